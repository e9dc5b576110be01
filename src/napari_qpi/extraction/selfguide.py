"""Self-guidance: the scatterers a blind kernel marks in its own map.

A guided network reads a Wiener kernel from scatterer positions. Blind, the positions
come from the map itself: the sparse activation of a first kernel estimate and its local
maxima. ``auto``'s latent fit does this with the blind two-stage kernel; training
(``TrainConfig.self_guide``) does it on its own batches, so that the guided encoder
also learns from the positions it will be given, not only from true ones.

Works on one map (numpy: observation (E, H, W), kernel (E, k, k)) or a batch of maps
(torch: (B, E, H, W) and (B, E, k, k)).
"""

from __future__ import annotations

import numpy as np

from .fista import fista
from .operator import ConvOperator, is_tensor

__all__ = ["activation", "energy_signs", "peaks", "polarity", "self_guide"]

RELATIVE_SPARSITY = 0.15  # λ of the activation, relative to max |Aᵀ Y|
PEAK_FRACTION = 0.25  # a peak is a local maximum above this fraction of the maximum
PEAK_SIZE = 5  # the local-maximum neighbourhood (px)
GUIDE_ITERS = 40


def activation(y, kernel, support=None, mask=None, x0=None, num_iter: int = 20):
    """The sparse non-negative activation of ``kernel`` in one map (numpy), with λ
    relative to the largest matched-filter response; a batch of kernels (B, E, k, k)
    gives one activation (B, H, W) each, each with its own λ."""
    op = ConvOperator(np.asarray(kernel, np.float32), y.shape[-2:])  # float32 FFTs: speed
    # one λ per kernel of a batch (B, E, k, k)
    lam = RELATIVE_SPARSITY * np.abs(op.adjoint(y * (1 if mask is None else mask))).max(
        axis=(-2, -1))
    lam = float(lam) if np.ndim(lam) == 0 else lam
    return fista(op, y, sparsity=lam, num_iter=num_iter, x0=x0, support=support, mask=mask)


def peaks(act: np.ndarray) -> np.ndarray | None:
    """(N, 2) pixels of the activation's local maxima above ``PEAK_FRACTION`` of its max."""
    from scipy.ndimage import maximum_filter

    if act.max() <= 0:
        return None
    keep = (act == maximum_filter(act, size=PEAK_SIZE)) & (act > PEAK_FRACTION * act.max())
    pos = np.argwhere(keep)
    return pos if len(pos) else None


def polarity(y, kernel):
    """+1 or −1 per map: the sign that makes the strongest matched-filter responses
    positive (scatterers are X ≥ 0; a kernel's sign is the data's to decide)."""
    corr = ConvOperator(kernel, y.shape[-2:]).adjoint(y)
    if not is_tensor(corr):
        top = np.abs(corr) >= np.sort(np.abs(corr).ravel())[-max(5, corr.size // 200)]
        return 1.0 if corr[top].sum() >= 0 else -1.0
    import torch

    flat = corr.flatten(1)
    n = max(5, flat.shape[1] // 200)
    top = flat.abs().topk(n, dim=1).indices
    return torch.where(flat.gather(1, top).sum(1) >= 0, 1.0, -1.0).to(flat.dtype)


def energy_signs(y: np.ndarray, kernel: np.ndarray, mask=None) -> np.ndarray:
    """+1 or −1 per slice, shape (E, 1, 1): the sign of each slice's kernel that makes
    its matched-filter response positive where the whole stack's is strongest.

    The learned decoder draws every slice with a positive core (the sign convention it
    was trained in), and :func:`polarity` gives a stack one sign; but a defect's pattern
    can change sign with energy (the scattering phase passes a resonance). Scatterers
    are X ≥ 0 and shared by every energy, so at the strongest responses of the stack
    (the scatterers, ``kernel`` already of the data's polarity) a slice whose kernel
    has the wrong sign responds negatively. ``mask``: the pixels in the fit.
    """
    y = np.asarray(y, float)
    kernel = np.asarray(kernel, float)
    if len(kernel) == 1:
        return np.ones((1, 1, 1))
    # each slice's own correlation (a batch of one-energy operators), not their sum
    per = ConvOperator(kernel[:, None], y.shape[-2:]).adjoint(
        (y * (1 if mask is None else mask))[:, None])
    total = per.sum(0).ravel()
    top = np.argsort(total)[-max(5, total.size // 200):]
    response = per.reshape(len(per), -1)[:, top].sum(1)
    return np.where(response >= 0, 1.0, -1.0)[:, None, None]


def self_guide(y, kernel, mask=None, num_iter: int = GUIDE_ITERS):
    """The scatterer guide ``kernel`` marks in its map(s): activation peaks set to 1.

    Parameters
    ----------
    y : (E, H, W) ndarray or (B, E, H, W) tensor
    kernel : (E, k, k) ndarray or (B, E, k, k) tensor
        Its sign is the data's to decide (:func:`polarity`).
    mask : (H, W) array, optional
        Pixels in the fit (numpy only).
    num_iter : int

    Returns
    -------
    (H, W) float32 ndarray or None (no peak), or a (B, H, W) tensor (rows without a peak
    are zero, i.e. blind).
    """
    if not is_tensor(y):
        kernel = polarity(y, kernel) * np.asarray(kernel, float)
        pos = peaks(activation(y, kernel, None, mask, num_iter=num_iter))
        if pos is None:
            return None
        guide = np.zeros(y.shape[-2:], np.float32)
        guide[pos[:, 0], pos[:, 1]] = 1.0
        return guide
    import torch

    kernel = kernel * polarity(y, kernel)[:, None, None, None]
    op = ConvOperator(kernel, y.shape[-2:])
    # λ per map: scale each map so its largest response is 1 (the peaks do not change)
    scale = op.adjoint(y).abs().amax((-2, -1)).clamp_min(1e-12)
    act = fista(op, y / scale[:, None, None, None], sparsity=RELATIVE_SPARSITY,
                num_iter=num_iter)
    top = act.amax((-2, -1), keepdim=True)
    local = torch.nn.functional.max_pool2d(act[:, None], PEAK_SIZE, 1, PEAK_SIZE // 2)[:, 0]
    return ((act == local) & (act > PEAK_FRACTION * top) & (top > 0)).to(y.dtype)
