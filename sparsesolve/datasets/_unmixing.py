"""Synthetic hyperspectral scenes for unmixing: smooth spectra, mixed pixels."""

from __future__ import annotations

import numbers
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_allocation

__all__ = ["load_earthlib_spectra", "make_hyperspectral", "make_measured_hyperspectral"]

# Wavelength range of a typical airborne VNIR-SWIR sensor (AVIRIS-like), in um.
_FIRST_WAVELENGTH = 0.4
_LAST_WAVELENGTH = 2.45
# Atmospheric water vapour windows where real sensors record mostly noise.
_WATER_WINDOWS = ((1.34, 1.46), (1.79, 1.96))
_N_HOT_BANDS = 6


def _bump(wavelengths, centre, width):
    return np.exp(-0.5 * ((wavelengths - centre) / width) ** 2)


def _sigmoid(wavelengths, centre, width):
    return 1.0 / (1.0 + np.exp(-(wavelengths - centre) / width))


def _archetype_spectra(wavelengths):
    """Hand-built smooth reflectance curves shaped like common materials.

    They are not measured spectra: each is a few Gaussian bumps and dips plus
    sigmoid edges placed where the real materials have their features
    (chlorophyll green peak and red edge near 0.55 and 0.7 um, liquid water
    absorptions near 1.45 and 1.94 um, clay and cellulose features near 2.1-2.2
    um), with reflectances in the usual 0.01-0.6 range.
    """
    w = wavelengths
    water_dips = 0.6 * _bump(w, 1.45, 0.05) + 0.7 * _bump(w, 1.94, 0.06)
    vegetation = (
        0.04 + 0.05 * _bump(w, 0.55, 0.03) + 0.42 * _sigmoid(w, 0.715, 0.012)
        - 0.22 * _sigmoid(w, 1.3, 0.08) + 0.08 * _bump(w, 1.65, 0.12)
        + 0.04 * _bump(w, 2.2, 0.1) - 0.27 * water_dips
    )
    # Iron-rich soil: steep rise through the visible, ferric dip near 0.9 um,
    # then a slow SWIR plateau with clay absorptions.
    soil = (
        0.05 + 0.3 * _sigmoid(w, 0.62, 0.06) - 0.05 * _bump(w, 0.9, 0.08)
        + 0.08 * _sigmoid(w, 1.4, 0.2) - 0.06 * _bump(w, 1.41, 0.03)
        - 0.08 * _bump(w, 1.91, 0.04) - 0.07 * _bump(w, 2.2, 0.03)
    )
    water = 0.01 + 0.06 * np.exp(-(w - 0.4) / 0.15)
    # Asphalt: dark and nearly flat, slightly falling in the SWIR, with
    # hydrocarbon dips at 1.73 and 2.31 um.
    asphalt = 0.08 + 0.02 * _bump(w, 1.0, 0.4) - 0.02 * _sigmoid(w, 1.9, 0.2) - (
        0.015 * _bump(w, 1.73, 0.04) + 0.02 * _bump(w, 2.31, 0.04)
    )
    # Metal roof: bright in the blue, decreasing steadily with wavelength.
    roof = 0.45 * np.exp(-(w - 0.4) / 1.2) + 0.05 - 0.04 * _bump(w, 0.85, 0.1)
    # Dry vegetation: no red edge, rising to a cellulose/lignin shoulder near
    # 1.65 and 2.2 um with a deep 2.1 um dip.
    dry_vegetation = (
        0.06 + 0.25 * _sigmoid(w, 1.1, 0.25) - 0.12 * _bump(w, 2.1, 0.05)
        - 0.05 * water_dips + 0.05 * _bump(w, 1.65, 0.1)
    )
    # Carbonate/clay mineral: bright, flat in the visible, strong narrow
    # absorption near 2.34 um and a broad one near 1.0 um.
    mineral = (
        0.5 - 0.2 * _bump(w, 2.34, 0.04) - 0.1 * _bump(w, 1.0, 0.2)
        - 0.15 * _sigmoid(-w, -0.55, 0.04)
    )
    return np.clip(
        np.vstack([vegetation, soil, roof, asphalt, dry_vegetation, mineral, water]),
        0.01,
        None,
    )


def _random_smooth_spectrum(wavelengths, rng):
    """Extra endmembers beyond the archetypes: bumps plus a sigmoid edge."""
    spectrum = 0.05 + 0.2 * rng.rand() * _sigmoid(
        wavelengths, rng.uniform(0.5, 1.2), rng.uniform(0.02, 0.2)
    )
    for _ in range(rng.randint(3, 7)):
        spectrum = spectrum + rng.uniform(-0.08, 0.15) * _bump(
            wavelengths, rng.uniform(0.4, 2.45), rng.uniform(0.03, 0.3)
        )
    return np.clip(spectrum, 0.02, 0.6)


def _smooth_perturbation(wavelengths, rng):
    """A slowly varying multiplicative change, so every seed differs a little."""
    total = np.zeros_like(wavelengths)
    for _ in range(3):
        total += rng.uniform(-1, 1) * _bump(
            wavelengths, rng.uniform(0.4, 2.45), rng.uniform(0.2, 0.6)
        )
    return 1.0 + 0.05 * total


def _smooth_abundances(n_rows, n_cols, n_endmembers, rng):
    from scipy.ndimage import gaussian_filter

    fields = np.empty((n_rows, n_cols, n_endmembers))
    # Width of the spatial structures: ~1/10 of the image, at least 2 px.
    sigma = max(2.0, min(n_rows, n_cols) / 10.0)
    for k in range(n_endmembers):
        field = gaussian_filter(rng.standard_normal((n_rows, n_cols)), sigma)
        fields[..., k] = field / (field.std() + 1e-12)
    logits = 3.0 * fields
    logits -= logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")


@validate_params(
    {
        "n_rows": [Interval(Integral, 1, None, closed="left")],
        "n_cols": [Interval(Integral, 1, None, closed="left")],
        "n_endmembers": [Interval(Integral, 1, None, closed="left")],
        "n_bands": [Interval(Integral, 2, None, closed="left")],
        "snr_db": [Interval(Real, None, None, closed="neither"), None],
        "corrupted_bands": ["array-like", Integral, str, None],
        "corruption_scale": [Interval(Real, 0, None, closed="left")],
        "abundance_model": [StrOptions({"smooth", "dirichlet"})],
        "dirichlet_alpha": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_hyperspectral(
    n_rows=60,
    n_cols=60,
    n_endmembers=4,
    n_bands=180,
    snr_db=30.0,
    *,
    corrupted_bands=None,
    corruption_scale=0.3,
    abundance_model="smooth",
    dirichlet_alpha=1.0,
    random_state=None,
):
    """Make a synthetic hyperspectral cube under the linear mixing model.

    Endmember spectra are smooth, physically plausible reflectance curves on
    ``n_bands`` wavelengths evenly spaced over 0.4-2.45 um. The first seven
    are hand-built to look like vegetation, soil, metal roof, asphalt, dry
    vegetation, a clay/carbonate mineral and water (shaped after where the
    real materials have their absorption features; they are **not** measured
    library spectra), taken in that order and perturbed slightly per seed; more
    endmembers are random smooth curves. Pixels are mixtures ``x = a^T E + noise`` with
    abundances that are nonnegative and sum to one.

    Parameters
    ----------
    n_rows, n_cols : int, default=60
        Image size in pixels.
    n_endmembers : int, default=4
        Number of materials.
    n_bands : int, default=180
        Number of spectral bands.
    snr_db : float or None, default=30.0
        Signal-to-noise ratio of the white Gaussian noise, in dB (``None``:
        no noise).
    corrupted_bands : None, "water", int or array-like of int, default=None
        Bands replaced by outliers ``0.05 * signal + corruption_scale * |N(0,1)|``.
        ``"water"`` corrupts the atmospheric water-vapour windows
        (1.34-1.46 and 1.79-1.96 um) plus six random "hot" bands with three
        times the outlier scale, as in real AVIRIS-type data.
    corruption_scale : float, default=0.3
        Standard deviation of the outliers (signal mean is about 0.2).
    abundance_model : {"smooth", "dirichlet"}, default="smooth"
        ``"smooth"``: spatially smooth fields (softmax of blurred noise) with
        near-pure regions and mixed borders; ``"dirichlet"``: independent
        Dirichlet draws per pixel.
    dirichlet_alpha : float, default=1.0
        Concentration of the Dirichlet model (< 1 gives purer pixels).
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    cube : ndarray of shape (n_rows, n_cols, n_bands)
        The observed image.
    endmembers : ndarray of shape (n_endmembers, n_bands)
        True endmember spectra.
    abundances : ndarray of shape (n_rows, n_cols, n_endmembers)
        True abundances (nonnegative, rows sum to one).
    corrupted : ndarray of int
        Sorted indices of the corrupted bands (empty when none).

    Examples
    --------
    >>> from sparsesolve.datasets import make_hyperspectral
    >>> cube, endmembers, abundances, corrupted = make_hyperspectral(
    ...     10, 12, n_endmembers=3, n_bands=50, corrupted_bands="water",
    ...     random_state=0)
    >>> cube.shape, endmembers.shape, abundances.shape
    ((10, 12, 50), (3, 50), (10, 12, 3))
    >>> bool(abs(abundances.sum(axis=-1) - 1).max() < 1e-12)
    True
    """
    _check_positive_int(n_rows, "n_rows")
    _check_positive_int(n_cols, "n_cols")
    _check_positive_int(n_endmembers, "n_endmembers")
    _check_positive_int(n_bands, "n_bands", minimum=2)
    if snr_db is not None and not isinstance(snr_db, numbers.Real):
        raise ValueError(f"snr_db must be a number or None; got {snr_db!r}.")
    if not isinstance(corruption_scale, numbers.Real) or corruption_scale < 0:
        raise ValueError(
            f"corruption_scale must be a nonnegative number; got {corruption_scale!r}."
        )
    if abundance_model not in ("smooth", "dirichlet"):
        raise ValueError(
            "abundance_model must be 'smooth' or 'dirichlet'; got "
            f"{abundance_model!r}."
        )
    # Abundance maps, clean and noisy cubes (float64), with working copies.
    check_allocation(8.0 * n_rows * n_cols * (2 * n_endmembers + 4 * n_bands),
                     "n_rows and n_cols",
                     what=f"a {n_rows} x {n_cols} x {n_bands} cube")
    rng = check_random_state(random_state)
    wavelengths = np.linspace(_FIRST_WAVELENGTH, _LAST_WAVELENGTH, n_bands)

    archetypes = _archetype_spectra(wavelengths)
    spectra = list(archetypes[:n_endmembers])
    while len(spectra) < n_endmembers:
        spectra.append(_random_smooth_spectrum(wavelengths, rng))
    endmembers = np.vstack(
        [s * _smooth_perturbation(wavelengths, rng) for s in spectra]
    )

    if abundance_model == "smooth":
        abundances = _smooth_abundances(n_rows, n_cols, n_endmembers, rng)
    else:
        if not isinstance(dirichlet_alpha, numbers.Real) or dirichlet_alpha <= 0:
            raise ValueError(
                f"dirichlet_alpha must be positive; got {dirichlet_alpha!r}."
            )
        abundances = rng.dirichlet(
            np.full(n_endmembers, float(dirichlet_alpha)), size=(n_rows, n_cols)
        )

    clean = abundances @ endmembers
    cube = clean.copy()
    if snr_db is not None:
        noise_power = np.mean(clean**2) / 10.0 ** (float(snr_db) / 10.0)
        cube += np.sqrt(noise_power) * rng.standard_normal(cube.shape)

    if corrupted_bands is None:
        corrupted = np.array([], dtype=np.intp)
    elif isinstance(corrupted_bands, str):
        if corrupted_bands != "water":
            raise ValueError(
                "corrupted_bands must be None, 'water' or band indices; got "
                f"{corrupted_bands!r}."
            )
        in_window = np.zeros(n_bands, dtype=bool)
        for low, high in _WATER_WINDOWS:
            in_window |= (wavelengths >= low) & (wavelengths <= high)
        water = np.flatnonzero(in_window)
        remaining = np.flatnonzero(~in_window)
        hot = rng.choice(
            remaining, size=min(_N_HOT_BANDS, remaining.size), replace=False
        )
        for band in water:
            cube[..., band] = 0.05 * clean[..., band] + corruption_scale * np.abs(
                rng.standard_normal((n_rows, n_cols))
            )
        for band in hot:
            cube[..., band] = 0.05 * clean[..., band] + 3 * corruption_scale * np.abs(
                rng.standard_normal((n_rows, n_cols))
            )
        corrupted = np.sort(np.concatenate([water, hot])).astype(np.intp)
    else:
        given = np.asarray(corrupted_bands)
        if given.size and not np.issubdtype(given.dtype, np.integer):
            raise TypeError(f"corrupted_bands must hold integer band indices; got "
                            f"dtype {given.dtype}.")
        corrupted = np.unique(given.astype(np.intp))
        if corrupted.size and (corrupted.min() < 0 or corrupted.max() >= n_bands):
            raise ValueError(
                f"corrupted_bands must be band indices in [0, {n_bands}); got "
                f"{corrupted_bands!r}."
            )
        for band in corrupted:
            cube[..., band] = 0.05 * clean[..., band] + corruption_scale * np.abs(
                rng.standard_normal((n_rows, n_cols))
            )
    return cube, endmembers, abundances, corrupted


# --- Scenes built from measured library spectra -------------------------------

# Reflectance ceiling of the "saturated" detector band (a sensor that clips
# bright pixels): the band's 20th percentile, so most pixels sit on it.
_SATURATION_QUANTILE = 0.2


def _earthlib_directory():
    """Folder of the data files inside the installed ``earthlib`` package.

    Found with :func:`importlib.util.find_spec`, which does not run
    ``earthlib/__init__.py`` (that imports earth-engine helpers the spectra
    do not need).
    """
    import importlib.util
    import os

    spec = importlib.util.find_spec("earthlib")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_earthlib_spectra needs the 'earthlib' package (MIT-licensed, it "
            "ships the spectral library): pip install earthlib, or "
            "pip install 'sparsesolve[bench]'."
        )
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    if not os.path.exists(os.path.join(folder, "spectra.sli")):
        raise ImportError(f"earthlib is installed but {folder} has no spectra.sli.")
    return folder


def _read_envi_header(path):
    """Key/value pairs of an ENVI header (values in braces become lists)."""
    import re

    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    fields = {}
    for match in re.finditer(r"^\s*([^=\n]+?)\s*=\s*(\{[^}]*\}|[^\n]*)", text, re.M):
        key, value = match.group(1).strip().lower(), match.group(2).strip()
        if value.startswith("{"):
            value = [item.strip() for item in value[1:-1].split(",")]
        fields[key] = value
    return fields


@validate_params(
    {"measured_only": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def load_earthlib_spectra(*, measured_only=True):
    """Measured reflectance spectra of the earthlib spectral library.

    earthlib (Anderson et al., MIT licence, on PyPI) bundles a global library
    of 7261 field and laboratory spectra resampled to 180 bands between 0.40
    and 2.45 um (10 nm steps; the atmospheric water windows 1.35-1.45 and
    1.80-1.95 um are left out): soils (the ICRAF-ISRIC world soil database),
    urban materials measured with an ASD spectrometer (roofing, asphalt,
    concrete, paint, metal...), sand, gravel, bark, litter and char, plus
    2000 canopy spectra *simulated* with PROSAIL. The files are read from the
    installed package; nothing is downloaded.

    Parameters
    ----------
    measured_only : bool, default=True
        Leave out the simulated canopy spectra.

    Returns
    -------
    spectra : ndarray of shape (n_spectra, 180)
        Reflectance (float64, about [0, 1]).
    wavelengths : ndarray of shape (180,)
        Band centres in micrometres.
    classes : ndarray of str, shape (n_spectra,)
        Material class of each spectrum (earthlib's ``LEVEL_3``: ``"soil"``,
        ``"asphalt"``, ``"comp_shingle"``, ``"canopy"``...).
    names : ndarray of str, shape (n_spectra,)
        Spectrum names in the library.

    Raises
    ------
    ImportError
        When earthlib is not installed.

    Examples
    --------
    >>> from sparsesolve.datasets import load_earthlib_spectra
    >>> spectra, wavelengths, classes, names = load_earthlib_spectra()
    ... # doctest: +SKIP
    >>> spectra.shape[1], float(wavelengths[0]), float(wavelengths[-1])
    ... # doctest: +SKIP
    (180, 0.4, 2.45)
    """
    import csv
    import os

    folder = _earthlib_directory()
    header = _read_envi_header(os.path.join(folder, "spectra.sli.hdr"))
    n_spectra, n_bands = int(header["lines"]), int(header["samples"])
    # ENVI data type 4 is float32; byte order 0 is little-endian.
    spectra = np.fromfile(os.path.join(folder, "spectra.sli"), dtype="<f4")
    spectra = spectra.reshape(n_spectra, n_bands).astype(np.float64)
    wavelengths = np.array([float(v) for v in header["wavelength"]])
    with open(os.path.join(folder, "spectra.csv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = np.array([row["NAME"] for row in rows])
    classes = np.array([row["LEVEL_3"] for row in rows])
    keep = np.ones(n_spectra, dtype=bool)
    if measured_only:
        keep = np.array([row["LEVEL_4"] == "measured" for row in rows])
    return spectra[keep], wavelengths, classes[keep], names[keep]


def _pick_spectra(spectra, classes, n_endmembers, correlated, rng):
    """Indices of ``n_endmembers`` library spectra.

    ``correlated=False``: from distinct material classes. ``correlated=True``:
    similar spectra (every pair within 8 degrees, the closest pair at least
    1 degree apart so they remain distinct materials), the hard case where
    endmembers are nearly collinear.
    """
    from sparsesolve.unmixing._metrics import spectral_angles

    # Very dark spectra (char, glass) carry little shape information.
    usable = np.flatnonzero(spectra.mean(axis=1) > 0.04)
    n_available = usable.size if correlated else np.unique(classes[usable]).size
    if n_endmembers > n_available:
        raise ValueError(
            f"n_endmembers={n_endmembers} exceeds the {n_available} "
            f"{'usable spectra' if correlated else 'material classes'} of the "
            "library; lower n_endmembers.")
    for _ in range(2000):
        if correlated:
            first = rng.choice(usable)
            angles = spectral_angles(spectra[first : first + 1], spectra[usable])[0]
            near = usable[(angles > 1.0) & (angles < 8.0)]
            if near.size < n_endmembers - 1:
                continue
            chosen = np.r_[first, rng.choice(near, n_endmembers - 1, replace=False)]
        else:
            names = rng.permutation(np.unique(classes[usable]))[:n_endmembers]
            chosen = np.array([rng.choice(usable[classes[usable] == c]) for c in names])
        pairwise = spectral_angles(spectra[chosen], spectra[chosen])
        off_diagonal = pairwise[~np.eye(n_endmembers, dtype=bool)]
        if off_diagonal.min() > 1.0 and (not correlated or off_diagonal.max() < 8.0):
            return chosen
    raise ValueError(
        f"could not pick {n_endmembers} distinct library spectra "
        f"(correlated={correlated})."
    )


@validate_params(
    {
        "n_rows": [Interval(Integral, 1, None, closed="left")],
        "n_cols": [Interval(Integral, 1, None, closed="left")],
        "n_endmembers": [Interval(Integral, 1, None, closed="left")],
        "snr_db": [Interval(Real, None, None, closed="neither"), None],
        "correlated": ["boolean"],
        "corruption": [StrOptions({"realistic"}), None],
        "dirichlet_alpha": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_measured_hyperspectral(
    n_rows=60,
    n_cols=60,
    n_endmembers=4,
    snr_db=30.0,
    *,
    correlated=False,
    corruption="realistic",
    dirichlet_alpha=1.0,
    random_state=None,
):
    """Make a hyperspectral scene from measured library spectra (earthlib).

    Endmembers are measured reflectance spectra from
    :func:`load_earthlib_spectra`, put on a full 10 nm sensor grid from 0.40
    to 2.45 um (206 bands; the library leaves out the water windows, where
    the true spectrum is interpolated and the observation is noise). Pixels
    are Dirichlet mixtures plus white Gaussian noise.

    With ``corruption="realistic"`` the cube is damaged the way airborne
    spectrometer data are:

    * water-vapour windows (1.35-1.45 and 1.80-1.95 um, 26 bands): almost no
      signal reaches the sensor, so the reflectance there is
      ``0.05 * signal + N(0, 0.1^2)``;
    * low-SNR edges: the first 3 and last 5 bands carry ten times the noise;
    * striping: 3 bands with a per-column gain (+-20%) and offset (+-0.05),
      as from a miscalibrated push-broom detector element;
    * one dead band (all zeros) and one saturated band (clipped at its 20th
      percentile).

    Parameters
    ----------
    n_rows, n_cols : int, default=60
    n_endmembers : int, default=4
    snr_db : float or None, default=30.0
        Signal-to-noise ratio of the white noise on every band, in dB.
    correlated : bool, default=False
        Pick nearly collinear endmembers (every pair within 8 degrees) instead
        of spectra of distinct material classes.
    corruption : {"realistic", None}, default="realistic"
    dirichlet_alpha : float, default=1.0
        Concentration of the per-pixel Dirichlet abundances.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    cube : ndarray of shape (n_rows, n_cols, 206)
    endmembers : ndarray of shape (n_endmembers, 206)
        True spectra (interpolated across the water windows).
    abundances : ndarray of shape (n_rows, n_cols, n_endmembers)
    corrupted : ndarray of int
        Sorted indices of every damaged band (windows, edges, stripes, dead
        and saturated); score endmembers on the others.
    wavelengths : ndarray of shape (206,)
        Band centres in micrometres.

    Examples
    --------
    >>> from sparsesolve.datasets import make_measured_hyperspectral
    >>> cube, E, A, bad, wavelengths = make_measured_hyperspectral(
    ...     10, 10, 3, random_state=0)  # doctest: +SKIP
    >>> cube.shape, E.shape, bad.size  # doctest: +SKIP
    ((10, 10, 206), (3, 206), 36)
    """
    _check_positive_int(n_rows, "n_rows")
    _check_positive_int(n_cols, "n_cols")
    _check_positive_int(n_endmembers, "n_endmembers", minimum=2)
    if corruption not in ("realistic", None):
        raise ValueError(f"corruption must be 'realistic' or None; got {corruption!r}.")
    if not isinstance(dirichlet_alpha, numbers.Real) or dirichlet_alpha <= 0:
        raise ValueError(f"dirichlet_alpha must be positive; got {dirichlet_alpha!r}.")
    # 206 bands (0.40 to 2.45 um), as below.
    check_allocation(8.0 * n_rows * n_cols * (2 * n_endmembers + 4 * 206),
                     "n_rows and n_cols", what=f"a {n_rows} x {n_cols} x 206 cube")
    rng = check_random_state(random_state)
    library, library_wavelengths, classes, _ = load_earthlib_spectra()
    chosen = _pick_spectra(library, classes, n_endmembers, correlated, rng)
    wavelengths = np.round(np.arange(40, 246) / 100.0, 2)
    endmembers = np.vstack(
        [np.interp(wavelengths, library_wavelengths, s) for s in library[chosen]]
    )
    n_bands = wavelengths.size
    abundances = rng.dirichlet(
        np.full(n_endmembers, float(dirichlet_alpha)), size=(n_rows, n_cols)
    )
    clean = abundances @ endmembers
    sigma = 0.0
    if snr_db is not None:
        sigma = np.sqrt(np.mean(clean**2) / 10.0 ** (float(snr_db) / 10.0))
    cube = clean + sigma * rng.standard_normal(clean.shape)
    if corruption is None:
        return cube, endmembers, abundances, np.array([], dtype=np.intp), wavelengths

    in_library = np.isin(wavelengths, np.round(library_wavelengths, 2))
    water = np.flatnonzero(~in_library)
    cube[..., water] = 0.05 * clean[..., water] + 0.1 * rng.standard_normal(
        (n_rows, n_cols, water.size)
    )
    edges = np.r_[0:3, n_bands - 5 : n_bands]
    cube[..., edges] += 9.0 * sigma * rng.standard_normal(
        (n_rows, n_cols, edges.size))
    candidates = np.setdiff1d(np.flatnonzero(in_library), edges)
    damaged = rng.choice(candidates, 5, replace=False)
    stripes, dead, saturated = damaged[:3], damaged[3:4], damaged[4:]
    for band in stripes:
        gain = 1.0 + rng.uniform(-0.2, 0.2, n_cols)
        offset = rng.uniform(-0.05, 0.05, n_cols)
        cube[..., band] = cube[..., band] * gain + offset
    cube[..., dead] = 0.0
    for band in saturated:
        ceiling = np.quantile(cube[..., band], _SATURATION_QUANTILE)
        cube[..., band] = np.minimum(cube[..., band], ceiling)
    corrupted = np.unique(np.r_[water, edges, stripes, dead, saturated]).astype(np.intp)
    return cube, endmembers, abundances, corrupted, wavelengths
