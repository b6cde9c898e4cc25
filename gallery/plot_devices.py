"""
One algorithm, two devices
==========================

sparsesolve writes each algorithm once. The data you pass decides where it
runs: NumPy arrays on the CPU (numba-compiled loops), CuPy arrays on the GPU
(the same loop bodies compiled by numba-cuda), and the result comes back in
the library it came in.

This example applies the thresholding operators used by the sparse coders to
a ramp of coefficients, first with NumPy, then with array-api-strict (a
strict stand-in for another array library, used in our tests to catch code
that would only work with NumPy), and finally with CuPy when a GPU is
present.
"""

# %%
# NumPy in, NumPy out
# -------------------
import array_api_compat
import array_api_strict
import matplotlib.pyplot as plt
import numpy as np

from sparsesolve.coding import threshold

coefficients = np.linspace(-3, 3, 601)
soft = threshold(coefficients, "l1", lam=1.0)
hard = threshold(coefficients, "l0", lam=1.0)
print(type(soft).__module__, soft.dtype)

# %%
# Another array library, same code
# --------------------------------
strict = threshold(array_api_strict.asarray(coefficients), "l1", lam=1.0)
print(array_api_compat.array_namespace(strict).__name__)
# DLPack hands the values to NumPy without going through Python objects.
strict_on_host = np.from_dlpack(strict)
print("largest difference to NumPy:", float(np.max(np.abs(strict_on_host - soft))))

# %%
# On the GPU, when there is one
# -----------------------------
try:
    import cupy

    cupy.cuda.runtime.getDeviceCount()  # raises when no device is reachable
except Exception:  # no CuPy, no driver or no device
    cupy = None
if cupy is not None:
    on_gpu = threshold(cupy.asarray(coefficients), "l1", lam=1.0)
    print(type(on_gpu).__module__, float(abs(on_gpu.get() - soft).max()))
else:
    print("No GPU here: the CuPy path is skipped.")

# %%
# What the operators do
# ---------------------
# Soft thresholding shrinks every coefficient towards zero by ``lam``; hard
# thresholding keeps large coefficients untouched and zeroes the rest, at
# ``sqrt(2 lam)`` for the penalty ``lam * ||u||_0``.
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(coefficients, coefficients, color="0.8", label="identity")
ax.plot(coefficients, soft, label="soft (l1)")
ax.plot(coefficients, hard, label="hard (l0)")
ax.set_xlabel("input coefficient")
ax.set_ylabel("thresholded coefficient")
ax.set_title("Soft and hard thresholding at lam = 1")
ax.legend()
fig.tight_layout()
plt.show()
