"""``score``: every kernel metric of an estimate against the true kernel, in one call."""

from __future__ import annotations

import numpy as np

from ..physics.kernels import crop_centered
from . import metrics

__all__ = ["SCORES", "score"]

#: The metrics :func:`score` returns, in table order; similarities first (higher is
#: better), then errors (lower is better).
SCORES = ("tail_similarity", "aligned_tail_similarity", "kernel_similarity",
          "qspace_correlation", "paper_rmse", "paper_mae")

_REDUCE = {"median": np.median, "mean": np.mean}


def _crop(kernel: np.ndarray, size: int) -> np.ndarray:
    """The centred ``size``×``size`` window of a centred kernel (scatterer at ``k // 2``).

    ``ifftshift`` moves the centre pixel to index 0 (fft ordering), where the simulator's
    :func:`~napari_qpi.physics.kernels.crop_centered` takes its window.
    """
    if kernel.shape[-1] == size and kernel.shape[-2] == size:
        return kernel
    return crop_centered(np.fft.ifftshift(kernel, axes=(-2, -1)), size)


def _as_stack(x, name: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric (k, k) or (E, k, k) array") from None
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != a.shape[-2] or a.shape[-1] < 3:
        raise ValueError(f"{name} must be a square (k, k) or (E, k, k) kernel with k ≥ 3, "
                         f"got shape {np.shape(x)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _fit(kernel: np.ndarray, size: int) -> np.ndarray:
    """``kernel`` on a centred ``size`` window: cropped when larger, zero-padded when
    smaller (a method that returns a small window claims zero outside it)."""
    k = kernel.shape[-1]
    if k >= size:
        return _crop(kernel, size)
    lo = size // 2 - k // 2
    out = np.zeros(kernel.shape[:-2] + (size, size))
    out[..., lo:lo + k, lo:lo + k] = kernel
    return out


def score(truth, estimate, *, reduce: str = "median", window: str = "truth") -> dict:
    """Every metric of the QPI primer §5 for one estimated kernel (stack).

    Parameters
    ----------
    truth, estimate : (k, k) or (E, k, k) array_like
        True and estimated kernels, scatterer on the centre pixel ``k // 2``; windows
        may differ. A one-energy stack and a single map compare.
    reduce : {"median", "mean", "none"}
        How to combine energies: one float per metric, or ``"none"`` for an (E,) array.
    window : {"truth", "common"}
        ``"truth"``: compare on the true kernel's window (made odd) — a larger estimate
        is cropped around its centre, a smaller one zero-padded, so a window that misses
        the tail costs what it misses. ``"common"``: crop both to the smaller window.

    Returns
    -------
    dict
        ``tail_similarity``, ``aligned_tail_similarity`` (a diagnostic: the same with
        the estimate aligned before its core is cut, blind to which site of a
        multi-site defect it is centred on), ``kernel_similarity``,
        ``qspace_correlation`` (1 is perfect; invariant to sign, scale and small
        shifts), ``paper_rmse``, ``paper_mae`` (0 is perfect; sign-sensitive), and
        ``window``: the side in px of the compared window.

    Examples
    --------
    >>> import numpy as np
    >>> k = np.random.default_rng(0).normal(size=(33, 33))
    >>> big = np.pad(k, 8)  # the same kernel in a 49-px window
    >>> s = score(k, -2 * big)
    >>> round(s["tail_similarity"], 6), s["window"]
    (1.0, 33)
    >>> round(score(big, k)["tail_similarity"], 6)  # zero-padded to the truth's 49 px
    1.0
    """
    if reduce not in (*_REDUCE, "none"):
        raise ValueError(f"reduce={reduce!r} is unknown; choose median, mean or none")
    if window not in ("truth", "common"):
        raise ValueError(f"window={window!r} is unknown; choose truth or common")
    a, b = _as_stack(truth, "truth"), _as_stack(estimate, "estimate")
    if len(a) != len(b) and 1 not in (len(a), len(b)):
        raise ValueError(f"truth has {len(a)} energies, the estimate {len(b)}; score the "
                         "same energies")
    k = a.shape[-1] if window == "truth" else min(a.shape[-1], b.shape[-1])
    k -= 1 - k % 2  # an odd window keeps the scatterer on its centre pixel
    a, b = _crop(a, k), _fit(b, k)
    out: dict = {name: getattr(metrics, name)(a, b) for name in SCORES}
    if reduce != "none":
        out = {name: float(_REDUCE[reduce](v)) for name, v in out.items()}
    out["window"] = k
    return out
