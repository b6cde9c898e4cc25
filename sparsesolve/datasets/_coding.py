"""Whitened natural-image patches from images shipped with scikit-learn."""

from __future__ import annotations

import numbers
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_allocation, check_finite, check_real

__all__ = ["make_image_patches"]

# Cut-off of the whitening filter |f| exp(-(|f| / f0)^4), in cycles per pixel
# (Olshausen & Field 1997: f0 = 0.4 of the Nyquist-normalised axis).
_CUTOFF = 0.4
# Per-pixel variance of the filtered images, as in the reference code.
_TARGET_VARIANCE = 0.1


def _grey(image):
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        # ITU-R 601 luma weights, the usual RGB -> grey conversion.
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114])
    if image.ndim != 2:
        raise ValueError(
            "images must be 2-D grey or 3-D colour arrays; got an array with "
            f"shape {image.shape}."
        )
    return image


def _whiten(image):
    """z-score, then apply the whitening / low-pass filter in Fourier space."""
    image = (image - image.mean()) / max(image.std(), 1e-12)
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.rfftfreq(image.shape[1])[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    response = radius * np.exp(-((radius / _CUTOFF) ** 4))
    return np.fft.irfft2(np.fft.rfft2(image) * response, s=image.shape)


@validate_params(
    {
        "images": ["array-like", None],
        "patch_size": [tuple, list],
        "n_patches": [Interval(Integral, 1, None, closed="left")],
        "whiten": ["boolean"],
        "min_std": [StrOptions({"median"}), Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_image_patches(
    images=None,
    patch_size=(16, 16),
    n_patches=10000,
    whiten=True,
    min_std="median",
    random_state=None,
):
    """Random patches of natural images, whitened and contrast-filtered.

    The images are turned grey, z-scored and (with ``whiten=True``) filtered
    by ``|f| exp(-(|f| / 0.4)**4)`` (``f`` in cycles per pixel), which
    flattens the 1/f spectrum of natural images and removes the highest
    frequencies (Olshausen & Field, 1997); they are then scaled to a mean
    per-pixel variance of 0.1. Each patch has its own mean removed. Low-contrast
    patches, whose codes would be all zero and make "fraction of active atoms"
    meaningless, are dropped: by default those below the median patch standard
    deviation.

    Parameters
    ----------
    images : list of array, default=None
        Grey (2-D) or colour (3-D) images. ``None`` uses the two images that
        ship with scikit-learn (:func:`sklearn.datasets.load_sample_images`:
        ``china.jpg`` and ``flower.jpg``); nothing is downloaded.
    patch_size : tuple of int, default=(16, 16)
        Patch height and width.
    n_patches : int, default=10000
        Number of patches returned.
    whiten : bool, default=True
        Apply the whitening filter (otherwise only z-score and scaling).
    min_std : float or "median", default="median"
        Keep patches whose standard deviation (after removing their mean)
        exceeds this value; ``"median"`` uses the median over candidate
        patches, so about half of the image area is kept; ``0`` keeps all
        non-flat patches.
    random_state : int, RandomState instance or None, default=None
        Seed of the patch positions.

    Returns
    -------
    patches : ndarray of shape (n_patches, patch_height * patch_width)
        One flattened patch per row (float64).

    Examples
    --------
    >>> from sparsesolve.datasets import make_image_patches
    >>> X = make_image_patches(patch_size=(8, 8), n_patches=100, random_state=0)
    >>> X.shape
    (100, 64)
    >>> bool(abs(X.mean(axis=1)).max() < 1e-12)
    True
    """
    if (
        not isinstance(patch_size, (tuple, list))
        or len(patch_size) != 2
        or not all(isinstance(s, numbers.Integral) and s >= 1 for s in patch_size)
    ):
        raise ValueError(
            f"patch_size must be a pair of positive integers; got {patch_size!r}."
        )
    if not isinstance(n_patches, numbers.Integral) or n_patches < 1:
        raise ValueError(f"n_patches must be a positive integer; got {n_patches!r}.")
    if not (min_std == "median" or (
        isinstance(min_std, numbers.Real) and min_std >= 0
    )):
        raise ValueError(
            f"min_std must be a nonnegative number or 'median'; got {min_std!r}."
        )
    if images is None:
        from sklearn.datasets import load_sample_images

        images = load_sample_images().images
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    if len(images) == 0:
        raise ValueError("images must hold at least one image.")
    height, width = (int(s) for s in patch_size)
    # Candidate positions and the patches themselves (float64).
    check_allocation(float(n_patches) * (8 * height * width + 32), "n_patches",
                     what=f"{n_patches} patches of {height} x {width}")
    for index, image in enumerate(images):
        image = np.asarray(image)
        check_real(image, f"images[{index}]", np, reason="patches are real;")
        check_finite(image, f"images[{index}]", np)
    prepared = []
    for image in images:
        image = _grey(image)
        if image.shape[0] < height or image.shape[1] < width:
            raise ValueError(
                f"images: an image of shape {image.shape} is smaller than patch_size "
                f"{patch_size}."
            )
        image = _whiten(image) if whiten else (image - image.mean()) / max(
            image.std(), 1e-12)
        prepared.append(image)
    mean_variance = float(np.mean([im.var() for im in prepared]))
    if mean_variance <= 0:
        raise ValueError("images are constant: no patch has any contrast.")
    scale = np.sqrt(_TARGET_VARIANCE / mean_variance)
    prepared = [im * scale for im in prepared]

    rng = check_random_state(random_state)
    # Draw candidates in rounds until enough pass the contrast filter; with the
    # median rule half of them pass, so two or three rounds suffice.
    kept, threshold = [], None
    n_kept, n_rounds = 0, 0
    while n_kept < n_patches:
        n_rounds += 1
        if n_rounds > 50:
            raise ValueError(
                f"Fewer than {n_patches} patches pass min_std={min_std!r}; lower "
                "min_std or n_patches."
            )
        n_draw = 2 * (n_patches - n_kept) + 64
        which = rng.randint(len(prepared), size=n_draw)
        candidates = np.empty((n_draw, height * width))
        for row, index in enumerate(which):
            image = prepared[index]
            top = rng.randint(image.shape[0] - height + 1)
            left = rng.randint(image.shape[1] - width + 1)
            candidates[row] = image[top:top + height, left:left + width].ravel()
        candidates -= candidates.mean(axis=1, keepdims=True)
        stds = candidates.std(axis=1)
        if threshold is None:
            threshold = float(np.median(stds)) if min_std == "median" else float(
                min_std)
        passing = candidates[stds > threshold]
        kept.append(passing)
        n_kept += passing.shape[0]
    return np.concatenate(kept)[:n_patches]
