import subprocess
import sys

import sparsesolve


def test_every_public_name_resolves():
    for name in sparsesolve.__all__:
        assert getattr(sparsesolve, name) is not None


def test_import_needs_no_cupy():
    # A fresh interpreter in which importing CuPy fails: sparsesolve and its
    # families still import.
    code = (
        "import sys; sys.modules['cupy'] = None; import sparsesolve; "
        "[getattr(sparsesolve, n) for n in sparsesolve.__all__]; "
        "assert 'cupy' not in [m for m in sys.modules if sys.modules[m]]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
