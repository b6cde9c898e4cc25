"""Progress reporting shared by every long loop.

``verbose=0`` is silent; ``verbose=1`` shows a tqdm bar over the outer
iterations (never inside compiled kernels); ``verbose>=2`` also prints one line
per iteration with the quantities the solver tracks (objective, residual...).
"""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """Report the outer iterations of a solver according to ``verbose``.

    Parameters
    ----------
    total : int
        The most iterations the loop can run.
    verbose : int, default=0
        0: silent; 1: progress bar; 2 or more: bar plus one line per
        iteration.
    desc : str, default=""
        Label shown before the bar, usually the estimator's name.

    Examples
    --------
    >>> from sparsesolve._progress import Progress
    >>> with Progress(total=3, verbose=0, desc="demo") as progress:
    ...     for iteration in range(3):
    ...         progress.update(objective=1.0 / (iteration + 1))
    >>> progress.n_updates
    3
    """

    def __init__(self, total, verbose=0, desc=""):
        self.total = int(total)
        self.verbose = int(verbose or 0)
        self.desc = desc
        self.n_updates = 0
        self._bar = None

    def __enter__(self):
        if self.verbose >= 1:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, file=sys.stderr)
        return self

    def update(self, **values):
        """Advance by one iteration, showing ``values`` next to the bar."""
        self.n_updates += 1
        if self._bar is None:
            return
        if values:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()})
        self._bar.update(1)
        if self.verbose >= 2:
            shown = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
            self._bar.write(f"[{self.desc}] iteration {self.n_updates}: {shown}")

    def __exit__(self, *exc_info):
        if self._bar is not None:
            self._bar.close()
        return False
