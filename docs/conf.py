"""Sphinx configuration for the sparsesolve documentation."""

import os
import sys
from pathlib import Path

import sparsesolve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

project = "sparsesolve"
author = "The sparsesolve developers"
copyright = "2026, The sparsesolve developers"
release = sparsesolve.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/**/*.ipynb",
                    "auto_examples/**/*.py", "sg_execution_times.rst"]

html_theme = "pydata_sphinx_theme"
html_static_path = []
html_title = "sparsesolve"
html_theme_options = {"show_toc_level": 2, "navigation_with_keys": False}

# The gallery's examples are executed during the build (CI builds the docs),
# so each one is kept to a few seconds on 2 cores; a failing example fails
# the build.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "abort_on_example_error": True,
    "doc_module": ("sparsesolve",),
    "backreferences_dir": None,
    "download_all_examples": False,
    "show_memory": False,
    "plot_gallery": os.environ.get("SPARSESOLVE_DOCS_PLOT_GALLERY", "True"),
    "write_computation_times": False,
}


def _skip_metadata_routing(app, what, name, obj, skip, options):
    """Hide scikit-learn's generated ``set_*_request`` methods.

    They are added to every estimator by scikit-learn's metadata routing and
    their docstrings cross-reference scikit-learn's own user guide.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_routing)
