"""Named loss terms; every loss returns a dict so training can log each term."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CORE_RADIUS = 3


def _masks(k: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    h = k // 2
    r = torch.arange(-h, h + 1, device=device, dtype=torch.float32)
    rr = torch.sqrt(r[:, None] ** 2 + r[None, :] ** 2)
    return (rr > CORE_RADIUS).float(), (rr < h - 2).float()


def reconstruction(pred: torch.Tensor, true: torch.Tensor) -> dict[str, torch.Tensor]:
    """Full relative error plus two tail terms, so the oscillating tail counts.

    A plain MSE on unit-norm kernels is dominated by the core (often > 90 % of the
    energy); the tail terms are the relative tail error and 1 − cosine of the tails,
    the quantity the tail-similarity metric reads.
    """
    tail, _ = _masks(true.shape[-1], true.device)
    err = ((pred - true) ** 2).flatten(1).sum(1) / (true ** 2).flatten(1).sum(1).clamp_min(1e-12)
    pt, tt = (pred * tail).flatten(1), (true * tail).flatten(1)
    tail_err = ((pt - tt) ** 2).sum(1) / (tt ** 2).sum(1).clamp_min(1e-12)
    cos = (pt * tt).sum(1) / (pt.norm(dim=1) * tt.norm(dim=1)).clamp_min(1e-12)
    return {"full": err.mean(), "tail": tail_err.mean(), "tail_cos": (1 - cos).mean()}


def rotate(img: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate (B, k, k) images about the centre pixel by ``angles`` (radians)."""
    c, s = torch.cos(angles), torch.sin(angles)
    theta = torch.zeros(len(img), 2, 3, device=img.device)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = c, -s, s, c
    grid = F.affine_grid(theta, (len(img), 1, *img.shape[-2:]), align_corners=True)
    return F.grid_sample(img[:, None], grid, align_corners=True)[:, 0]


def symmetry(pred: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """Mismatch of each kernel with itself rotated by 2π/n of its family (n ≥ 2;
    isotropic kernels use 45°), inside the inscribed disc."""
    n = torch.where(orders == 0, torch.full_like(orders, 8), orders)
    use = n >= 2
    if not use.any():
        return pred.new_zeros(())
    p = pred[use]
    rot = rotate(p, 2 * math.pi / n[use].float())
    _, disc = _masks(p.shape[-1], p.device)
    num = (((rot - p) * disc) ** 2).flatten(1).sum(1)
    return (num / ((p * disc) ** 2).flatten(1).sum(1).clamp_min(1e-12)).mean()


def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) ‖ N(0, 1)), summed over latent dimensions, mean over the batch."""
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).mean()


def aligned(pred: torch.Tensor, true: torch.Tensor, radius: int) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """Inner (k − 2r)² windows of ``pred`` and of ``true`` moved by the shift (≤ ``radius``
    px each way) under which they agree best (cosine).

    A kernel is centred on one site of its defect; which one a map cannot say (K ⊛ X is
    unchanged when K moves and X moves back), so a network guided by positions found in
    the map is scored up to that shift.
    """
    k, r = true.shape[-1], int(radius)
    n = k - 2 * r
    p = pred[..., r:k - r, r:k - r]
    windows = true.unfold(-2, n, 1).unfold(-2, n, 1)  # (B, 2r+1, 2r+1, n, n)
    cos = (windows * p[:, None, None]).sum((-2, -1)) / (
        windows.norm(dim=(-2, -1)) * p.norm(dim=(-2, -1))[:, None, None]).clamp_min(1e-12)
    best = cos.flatten(1).argmax(1)
    rows = torch.arange(len(true), device=true.device)
    t = windows.flatten(1, 2)[rows, best]
    return p, t
