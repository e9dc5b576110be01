"""Physics-informed inputs of the observation encoder.

- The Welch power spectrum: |Y(q)|² ≈ |K(q)|² |X(q)|², and |X(q)|² is flat on
  average for scattered defects, so the averaged spectrum of 64-px tiles carries the
  kernel's magnitude for any scatterer layout and any map size.
- The power kernel: the zero-phase kernel whose spectrum is the smoothed power
  spectrum (the ``power`` method, in torch), a layout-independent estimate of the kernel
  that the network refines with what the power spectrum cannot know (phase, sign,
  asymmetry).
- The guide: with scatterer positions known, the Wiener estimate of the kernel
  (regularised deconvolution by the scatterer map); zeros when blind.

The shape helpers :func:`pad_to` and :func:`crop_to` live here so that the networks
import features and never the other way round.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IMAGE_SIZE = 72
TILE = 64


def pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the last two axes of a (B, C, h, w) tensor to ``size`` × ``size``, centred."""
    dy, dx = size - x.shape[-2], size - x.shape[-1]
    return F.pad(x, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))


def crop_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop of the last two axes."""
    o = (x.shape[-1] - size) // 2
    return x[..., o : o + size, o : o + size]


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
    # Zero-pad a side shorter than the window so the crop below is always k × k
    # (a 64 × 128 map with the decoders' 65-px window).
    s = (max(y.shape[-2], kernel_size), max(y.shape[-1], kernel_size))
    yf = torch.fft.fft2(y, s=s)
    xf = torch.fft.fft2(guide, s=s)
    p = xf.abs() ** 2
    reg = balance * p.mean((-2, -1), keepdim=True) + 1e-12
    k = torch.fft.ifft2(yf * xf.conj() / (p + reg)).real
    r = kernel_size // 2
    k = torch.roll(k, shifts=(r, r), dims=(-2, -1))[..., :kernel_size, :kernel_size]
    return k / (k.flatten(1).norm(dim=1)[:, None, None] + 1e-12)


def power_kernel(y: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Zero-phase kernel (B, k, k), unit norm, from each map's power spectrum.

    The torch twin of :func:`napari_qpi.extraction.methods.power.power_kernel`: the
    linear autocorrelation tapered by a product of triangles of half-width k (whose
    transform is non-negative), a 10th-percentile noise floor removed, the square root
    of what is left transformed back and cropped around lag 0.
    """
    b, h, w = y.shape
    y = y - y.mean((-2, -1), keepdim=True)
    s = (max(2 * h, kernel_size), max(2 * w, kernel_size))  # k × k even on a thin map
    auto = torch.fft.irfft2(torch.fft.rfft2(y, s=s).abs() ** 2, s=s)
    lag0 = torch.fft.fftfreq(s[0], 1 / s[0], dtype=y.dtype, device=y.device).abs()
    lag1 = torch.fft.fftfreq(s[1], 1 / s[1], dtype=y.dtype, device=y.device).abs()
    taper = ((1 - lag0 / kernel_size).clamp_min(0)[:, None]
             * (1 - lag1 / kernel_size).clamp_min(0)[None, :])
    smooth = torch.fft.fft2(auto * taper).real.flatten(1)
    floor = smooth.kthvalue(max(1, int(0.1 * smooth.shape[1])), dim=1, keepdim=True).values
    mag = (smooth - floor).clamp_min(0).sqrt().view(b, *s)
    k = torch.fft.ifft2(mag).real
    r = kernel_size // 2
    k = torch.roll(k, shifts=(r, r), dims=(-2, -1))[..., :kernel_size, :kernel_size]
    return k / (k.flatten(1).norm(dim=1)[:, None, None] + 1e-12)


#: Maps whose power kernels are computed together: 16 maps of 256² take about 0.2 s on
#: 2 cores; the 64 of a network batch (16 slices × 4 views) took over a second, the
#: longest stretch a Cancel waited on a large grid.
ANCHOR_CHUNK = 16


def anchor_kernel(y: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The power kernel of z-scored maps: what an anchored decoder decodes on.

    Each map's kernel is its own (z-scoring and the noise floor are per map), so the
    maps are taken :data:`ANCHOR_CHUNK` at a time with a cancel check between."""
    from ..progress import checkpoint

    parts = []
    for i in range(0, len(y), ANCHOR_CHUNK):
        if i:
            checkpoint()
        parts.append(power_kernel(zscore(y[i:i + ANCHOR_CHUNK]), kernel_size))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def observation_features(y: torch.Tensor, guide: torch.Tensor | None, kernel_size: int,
                         *, power: torch.Tensor | None = None):
    """Encoder inputs and z-scored maps.

    The image is (B, C, 72, 72) = [spectrum, guide, flag] and, when given, the maps'
    power kernels ``power`` (B, k, k; :func:`anchor_kernel` of ``y``) as a fourth channel.
    """
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
    chans = [
        pad_to(spec[:, None], IMAGE_SIZE)[:, 0],
        pad_to(g[:, None], IMAGE_SIZE)[:, 0],
        flag[:, None, None].expand(b, IMAGE_SIZE, IMAGE_SIZE),
    ]
    if power is not None:  # scaled like the guide and the stage-1 input (unit norm × 10)
        chans.append(pad_to(power[:, None] * 10.0, IMAGE_SIZE)[:, 0])
    return torch.stack(chans, dim=1), y
