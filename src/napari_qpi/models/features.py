"""Physics-informed inputs of the observation encoder.

- The Welch power spectrum: |Y(q)|² ≈ |K(q)|² |X(q)|², and |X(q)|² is flat on
  average for scattered defects, so the averaged spectrum of 64-px tiles carries the
  kernel's magnitude for any scatterer layout and any map size.
- The guide: with scatterer positions known, the Wiener estimate of the kernel
  (regularised deconvolution by the scatterer map); zeros when blind.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IMAGE_SIZE = 72
TILE = 64


def zscore(y: torch.Tensor) -> torch.Tensor:
    """Per-map zero mean, unit std."""
    y = y - y.mean((-2, -1), keepdim=True)
    return y / (y.std((-2, -1), keepdim=True) + 1e-8)


def welch_spectrum(y: torch.Tensor, tile: int = TILE) -> torch.Tensor:
    """(B, H, W) → (B, tile, tile) log power, centred, averaged over half-overlapping
    Hann-windowed tiles, normalised to zero mean and unit std."""
    b, h, w = y.shape
    if h < tile or w < tile:
        y = F.pad(y, (0, max(0, tile - w), 0, max(0, tile - h)))
        h, w = y.shape[-2:]
    win = torch.hann_window(tile, periodic=False, dtype=y.dtype, device=y.device)
    win2 = win[:, None] * win[None, :]
    tiles = y.unfold(1, tile, tile // 2).unfold(2, tile, tile // 2)  # (B, ny, nx, t, t)
    tiles = tiles - tiles.mean((-2, -1), keepdim=True)
    p = (torch.fft.fft2(tiles * win2).abs() ** 2).mean((1, 2))
    p = torch.fft.fftshift(p, dim=(-2, -1))
    lp = torch.log(p + 1e-6 * p.mean((-2, -1), keepdim=True) + 1e-12)
    return zscore(lp)


def wiener_guide(y: torch.Tensor, guide: torch.Tensor, kernel_size: int,
                 balance: float = 1e-2) -> torch.Tensor:
    """Wiener kernel estimate (B, k, k), unit norm, from maps and scatterer maps."""
    yf = torch.fft.fft2(y)
    xf = torch.fft.fft2(guide)
    p = xf.abs() ** 2
    reg = balance * p.mean((-2, -1), keepdim=True) + 1e-12
    k = torch.fft.ifft2(yf * xf.conj() / (p + reg)).real
    r = kernel_size // 2
    k = torch.roll(k, shifts=(r, r), dims=(-2, -1))[..., :kernel_size, :kernel_size]
    return k / (k.flatten(1).norm(dim=1)[:, None, None] + 1e-12)


def observation_features(y: torch.Tensor, guide: torch.Tensor | None, kernel_size: int):
    """Encoder inputs: image (B, 3, 72, 72) = [spectrum, guide, flag] and z-scored maps."""
    y = zscore(y)
    b = y.shape[0]
    spec = welch_spectrum(y)
    if guide is None:
        g = torch.zeros(b, kernel_size, kernel_size, dtype=y.dtype, device=y.device)
        flag = torch.zeros(b, dtype=y.dtype, device=y.device)
    else:
        g = wiener_guide(y, guide, kernel_size) * 10.0
        flag = (guide.flatten(1).abs().sum(1) > 0).to(y.dtype)
        g = g * flag[:, None, None]
    from .nets import pad_to

    image = torch.stack([
        pad_to(spec[:, None], IMAGE_SIZE)[:, 0],
        pad_to(g[:, None], IMAGE_SIZE)[:, 0],
        flag[:, None, None].expand(b, IMAGE_SIZE, IMAGE_SIZE),
    ], dim=1)
    return image, y
