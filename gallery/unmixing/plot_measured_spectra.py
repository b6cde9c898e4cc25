"""
Unmixing a scene built from measured spectra
============================================

Laboratory and field spectra of real materials are far more alike than
textbook endmembers: four roofing, paving or soil spectra can all lie within
a few degrees of each other. This scene mixes four measured spectra from the
earthlib library (shipped in the ``earthlib`` package) on a 206-band sensor
grid and damages it like airborne data: noise in the water-vapour windows,
noisy first and last bands, three striped bands, a dead and a saturated
band. VCA + FCLS on all bands, VCA + FCLS on the bands a noise screen keeps,
and :class:`~sparsesolve.unmixing.RobustUnmixing` are compared; the cube goes
in as it is and the abundances come back as maps.
"""

# %%
import numpy as np

from sparsesolve.datasets import make_measured_hyperspectral
from sparsesolve.unmixing import (
    RobustUnmixing,
    fcls,
    match_endmembers,
    plot_unmixing,
    spectral_angles,
    vca,
)

cube, endmembers, abundances, corrupted, wavelengths = make_measured_hyperspectral(
    50, 50, n_endmembers=4, correlated=True, random_state=7)
clean = np.setdiff1d(np.arange(cube.shape[2]), corrupted)
angles = spectral_angles(endmembers[:, clean], endmembers[:, clean])
print(f"{corrupted.size} damaged bands of {cube.shape[2]}; largest angle between "
      f"two materials {angles.max():.1f} deg")

# %%
# The two VCA + FCLS baselines and the robust fit.
X = cube.reshape(-1, cube.shape[2])
truth = abundances.reshape(-1, 4)


def report(name, found_endmembers, found_abundances):
    order, sad = match_endmembers(endmembers, found_endmembers, bands=clean)
    rmse = np.sqrt(np.mean((found_abundances[:, order] - truth) ** 2))
    print(f"{name:28s} mean SAD {sad.mean():5.2f} deg, abundance RMSE {rmse:.3f}")
    return order


_, picked = vca(X, 4, random_state=0)
report("VCA + FCLS, all bands", X[picked], fcls(X, X[picked]))
keep = RobustUnmixing(4)._clean_band_mask(X)
_, picked = vca(X[:, keep], 4, random_state=0)
report("VCA + FCLS, screened bands", X[picked], fcls(X[:, keep], X[picked][:, keep]))
model = RobustUnmixing(4, random_state=0)
maps = model.fit_transform(cube)
order = report("RobustUnmixing", model.endmembers_, maps.reshape(-1, 4))
print(f"maps of shape {maps.shape}, {model.n_iter_} iterations")

# %%
# Estimated spectra (damaged bands left out) over the measured ones, and the
# abundance maps.
plot_unmixing(model.endmembers_[order], maps[:, :, order], wavelengths=wavelengths,
              bad_bands=corrupted, reference=endmembers)

# %%
# The fit weighs each band by its inverse residual variance: the damaged
# bands end up with small weights.
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(7, 2.5))
ax.semilogy(wavelengths, model.band_weights_, ".-")
ax.semilogy(wavelengths[corrupted], model.band_weights_[corrupted], "r.",
            label="damaged")
ax.set_xlabel("wavelength (um)")
ax.set_ylabel("band weight")
ax.legend()
fig.tight_layout()
plt.show()
