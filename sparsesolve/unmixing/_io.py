"""Reading hyperspectral cubes from ENVI files (through Spectral Python)."""

from __future__ import annotations

import os
from numbers import Real

import numpy as np

from .._sklearn_compat import Interval, validate_params

__all__ = ["read_envi"]


def _float_list(value):
    if value is None:
        return None
    return np.asarray([float(v) for v in value], dtype=np.float64)


@validate_params(
    {
        "header": [str, os.PathLike],
        "image": [str, os.PathLike, None],
        "scale": [Interval(Real, 0, None, closed="neither"), None],
    },
    prefer_skip_nested_validation=True,
)
def read_envi(header, *, image=None, scale=None):
    """Read an ENVI image into a cube, with its wavelengths and bad bands.

    Needs the optional ``spectral`` package (Spectral Python;
    ``pip install spectral`` or ``pip install "sparsesolve[envi]"``).

    Parameters
    ----------
    header : str or path
        The ``.hdr`` file.
    image : str or path, default=None
        The data file, when its name is not the header's without ``.hdr``.
    scale : float, default=None
        Divide the data by this (for example 10000 for reflectance stored as
        integers). ``None`` uses the header's ``reflectance scale factor``
        when it has one, else 1.

    Returns
    -------
    cube : ndarray of shape (n_rows, n_cols, n_bands)
        float32 for float32 files, float64 otherwise.
    wavelengths : ndarray of shape (n_bands,) or None
        Band centres in the header's units (``wavelength units``).
    bad_bands : ndarray of int
        Indices of the bands the header's bad band list (``bbl``) marks as
        bad (value 0); empty when it has none. Pass ``bands=`` the others to
        :func:`match_endmembers`, or leave them in: the robust loss of
        :class:`RobustUnmixing` down-weights them.

    Examples
    --------
    >>> from sparsesolve.unmixing import read_envi
    >>> cube, wavelengths, bad = read_envi("scene.hdr")  # doctest: +SKIP
    """
    try:
        from spectral import envi
    except ImportError as error:
        raise ImportError(
            "read_envi needs the 'spectral' package (Spectral Python): "
            "pip install spectral."
        ) from error
    # Spectral Python also searches SPECTRAL_DATA for relative names; a path
    # that exists neither as given nor there is reported with its argument.
    for name, path in (("header", header), ("image", image)):
        if path is not None and not os.path.exists(str(path)) and not any(
                os.path.exists(os.path.join(folder, str(path)))
                for folder in os.environ.get("SPECTRAL_DATA", "").split(os.pathsep)
                if folder):
            raise FileNotFoundError(f"read_envi: {name} file {str(path)!r} does "
                                    "not exist.")
    opened = envi.open(str(header), None if image is None else str(image))
    # Raw values (Spectral Python would apply the scale factor itself, in
    # float32); float32 files stay float32, everything else becomes float64.
    dtype = np.float32 if np.dtype(opened.dtype) == np.float32 else np.float64
    cube = np.array(opened.load(dtype=dtype, scale=False), dtype=dtype)
    if cube.ndim == 2:  # a single-band image
        cube = cube[:, :, None]
    metadata = opened.metadata
    if scale is None:
        scale = float(metadata.get("reflectance scale factor", 1.0) or 1.0)
    if scale <= 0:
        raise ValueError(f"scale must be positive; got {scale!r}.")
    if scale != 1.0:
        cube = cube / np.asarray(scale, dtype=cube.dtype)
    wavelengths = _float_list(metadata.get("wavelength"))
    bad_band_list = _float_list(metadata.get("bbl"))
    if bad_band_list is None:
        bad = np.array([], dtype=np.intp)
    else:
        bad = np.flatnonzero(bad_band_list == 0).astype(np.intp)
    return cube, wavelengths, bad
