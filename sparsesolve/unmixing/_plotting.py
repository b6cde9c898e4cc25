"""Figures of unmixing results: endmember spectra and abundance maps."""

from __future__ import annotations

import numpy as np

from .._backend import to_numpy
from .._sklearn_compat import validate_params
from .._validation import check_real

__all__ = ["plot_unmixing"]


def _host_real(values, name):
    values = np.asarray(to_numpy(values))
    check_real(values, name, np, reason="spectra and abundances are plotted as real;")
    return values.astype(np.float64)


@validate_params(
    {
        "endmembers": ["array-like"],
        "abundances": ["array-like"],
        "wavelengths": ["array-like", None],
        "bad_bands": ["array-like", None],
        "shape": [tuple, list, None],
        "names": [list, tuple, None],
        "reference": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def plot_unmixing(endmembers, abundances, *, wavelengths=None, bad_bands=None,
                  shape=None, names=None, reference=None):
    """Plot endmember spectra above one abundance map per endmember.

    Parameters
    ----------
    endmembers : array of shape (n_endmembers, n_bands)
    abundances : array of shape (n_rows, n_cols, n_endmembers)
        Maps; or per-pixel abundances (n_pixels, n_endmembers) with ``shape``
        giving (n_rows, n_cols).
    wavelengths : array of shape (n_bands,), default=None
        x axis of the spectra (band index when ``None``).
    bad_bands : array-like of int, default=None
        Bands left out of the spectra (shaded): corrupted bands hold arbitrary
        endmember values.
    shape : tuple (n_rows, n_cols), default=None
        Map shape for per-pixel ``abundances``.
    names : list of str, default=None
        Endmember names for the titles.
    reference : array of shape (n_endmembers, n_bands), default=None
        True spectra drawn in black under the estimates (already matched,
        for example with :func:`match_endmembers`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.unmixing import plot_unmixing
    >>> figure = plot_unmixing(np.random.rand(2, 30), np.random.rand(4, 5, 2))
    >>> len(figure.axes)  # two spectra, two maps, the colour bar
    5
    """
    import matplotlib.pyplot as plt

    endmembers = _host_real(endmembers, "endmembers")
    abundances = _host_real(abundances, "abundances")
    if endmembers.ndim != 2:
        raise ValueError("endmembers must have shape (n_endmembers, n_bands); got "
                         f"{endmembers.shape}.")
    n_endmembers, n_bands = endmembers.shape
    if n_endmembers < 1 or n_bands < 1 or abundances.size == 0:
        raise ValueError(
            f"endmembers {endmembers.shape} and abundances {abundances.shape} must be "
            "non-empty.")
    if not (np.all(np.isfinite(endmembers)) and np.all(np.isfinite(abundances))):
        raise ValueError("endmembers and abundances must be finite (no NaN or inf).")
    if abundances.ndim == 2:
        if shape is None:
            raise ValueError("per-pixel abundances need shape=(n_rows, n_cols).")
        shape = tuple(shape)
        if len(shape) != 2 or shape[0] * shape[1] != abundances.shape[0]:
            raise ValueError(
                f"shape must be (n_rows, n_cols) with n_rows * n_cols = "
                f"{abundances.shape[0]} pixels; got {shape}.")
        abundances = abundances.reshape(shape + (abundances.shape[1],))
    if abundances.ndim != 3 or abundances.shape[2] != n_endmembers:
        raise ValueError(
            f"abundances must hold {n_endmembers} maps, shape (n_rows, n_cols, "
            f"{n_endmembers}); got {abundances.shape}.")
    x = np.arange(n_bands) if wavelengths is None else _host_real(
        wavelengths, "wavelengths")
    if x.shape != (n_bands,):
        raise ValueError(f"wavelengths must have shape ({n_bands},); got {x.shape}.")
    shown = np.ones(n_bands, dtype=bool)
    if bad_bands is not None:
        bad = np.asarray(to_numpy(bad_bands))
        if bad.size and (not np.issubdtype(bad.dtype, np.integer) or bad.ndim != 1
                         or bad.min() < -n_bands or bad.max() >= n_bands):
            raise ValueError(f"bad_bands must be 1-D integer band indices in "
                             f"[-{n_bands}, {n_bands}); got {bad!r}.")
        shown[bad.astype(np.intp)] = False
    names = list(names) if names else [f"endmember {k}" for k in range(n_endmembers)]
    if len(names) != n_endmembers:
        raise ValueError(f"names must give {n_endmembers} names (one per endmember); "
                         f"got {len(names)}.")
    if reference is not None:
        reference = _host_real(reference, "reference")
        if reference.shape != endmembers.shape:
            raise ValueError(f"reference must have the shape of endmembers "
                             f"{endmembers.shape}; got {reference.shape}.")
    figure, axes = plt.subplots(2, n_endmembers, figsize=(3 * n_endmembers, 5.5),
                                squeeze=False)
    for k in range(n_endmembers):
        spectrum_axis, map_axis = axes[0, k], axes[1, k]
        if reference is not None:
            truth = reference[k]
            spectrum_axis.plot(x, np.where(shown, truth, np.nan), "k", lw=2,
                               label="reference")
        spectrum_axis.plot(x, np.where(shown, endmembers[k], np.nan), label="estimate")
        for band in np.flatnonzero(~shown):
            spectrum_axis.axvspan(x[max(band - 1, 0)], x[min(band + 1, n_bands - 1)],
                                  color="0.92", lw=0)
        spectrum_axis.set_title(names[k], fontsize=9)
        spectrum_axis.set_xlabel("wavelength" if wavelengths is not None else "band")
        image = map_axis.imshow(abundances[:, :, k], vmin=0, vmax=1, cmap="viridis")
        map_axis.set_xticks([])
        map_axis.set_yticks([])
    axes[0, 0].set_ylabel("reflectance")
    if reference is not None:
        axes[0, 0].legend(fontsize=7)
    figure.colorbar(image, ax=axes[1, :].tolist(), shrink=0.8, label="abundance")
    return figure
