"""Re-centring a blind kernel on its scatterer, moving the activation the other way.

A ⊛ X is unchanged when the kernel shifts by −τ and the activation by +τ, so a blind
solver may put the scatterer anywhere in the window; these functions put it back on the
centre pixel. The scatterer is the energy centroid of the kernel's core
(:func:`core_offset`), not the k-window of largest ℓ1 mass of Cheung et al. (2020)
(:func:`l1_window_offset`, kept for comparison): a QPI kernel's slowly decaying tail holds
most of its ℓ1 mass, so that window drifts by up to half a window.
"""

from __future__ import annotations

import torch

__all__ = ["core_offset", "l1_window_offset", "recenter", "shift"]


def normalise(a: torch.Tensor) -> torch.Tensor:
    """Each (E, k, k) kernel of a batch on the unit sphere (Frobenius norm over E)."""
    return a / a.flatten(-3).norm(dim=-1).clamp_min(1e-30)[..., None, None, None]


# --- re-centring ---------------------------------------------------------------------------
def l1_window_offset(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Offset (dy, dx) of the ``size``-window of largest ℓ1 mass (the paper's re-centring rule).

    Kept for comparison; :func:`recenter` uses :func:`core_offset`, see the module notes.

    Parameters
    ----------
    kernel : (..., E, K, K) tensor
    size : int
        Odd window, ≤ K.

    Returns
    -------
    (..., 2) long tensor
        Row/column offset of the best window's centre from the centre pixel.
    """
    mass = kernel.abs().sum(-3)
    big = mass.shape[-1]
    lead = mass.shape[:-2]
    box = torch.nn.functional.avg_pool2d(mass.reshape(-1, 1, big, big), size, stride=1)
    box = box.reshape(*lead, -1)
    n = big - size + 1
    best = box.argmax(-1)
    half = (n - 1) // 2
    return torch.stack([best // n - half, best % n - half], dim=-1)


def core_offset(kernel: torch.Tensor, radius: int, *, box: int = 2,
                max_steps: int = 5) -> torch.Tensor:
    """Offset (dy, dx) of the kernel's scatterer pixel from its centre.

    The scatterer is located on the energy Σ_E A_E²: start at the centre of the
    (2·``box`` + 1)² box of largest energy, then move to the energy centroid of the disc of
    ``radius`` around the current point until it stays put (a mean shift). Energy, not ℓ1
    mass, because a QPI kernel's slowly decaying tail holds most of its ℓ1 mass while its
    core holds most of its energy; the centroid, not the peak, because the point group of
    the lattice (inversion, C3, C4) fixes the centroid of a symmetric disc on the
    scatterer even where the brightest pixel sits beside it.

    Parameters
    ----------
    kernel : (..., E, K, K) tensor
    radius : int
        Radius of the disc whose energy centroid is the scatterer.
    box : int
        Half-width of the box that gives the starting point.
    max_steps : int
        Mean-shift steps.

    Returns
    -------
    (..., 2) long tensor
        Row/column offset of the scatterer from the centre pixel.
    """
    energy = (kernel.detach() ** 2).sum(-3)
    big = energy.shape[-1]
    lead = energy.shape[:-2]
    flat = energy.reshape(-1, big, big)
    pooled = torch.nn.functional.avg_pool2d(flat[:, None], 2 * box + 1, stride=1,
                                            padding=box)[:, 0]
    best = pooled.reshape(len(flat), -1).argmax(-1)
    cy, cx = (best // big).to(energy.dtype), (best % big).to(energy.dtype)
    grid = torch.arange(big, device=energy.device, dtype=energy.dtype)
    for _ in range(max_steps):
        d2 = (grid[None, :, None] - cy[:, None, None]) ** 2 + (
            grid[None, None, :] - cx[:, None, None]) ** 2
        m = flat * (d2 <= radius * radius)
        tot = m.sum((-2, -1)).clamp_min(1e-30)
        ny = torch.round((m * grid[None, :, None]).sum((-2, -1)) / tot)
        nx = torch.round((m * grid[None, None, :]).sum((-2, -1)) / tot)
        done = bool(((ny == cy) & (nx == cx)).all())
        cy, cx = ny, nx
        if done:
            break
    half = big // 2
    off = torch.stack([cy, cx], dim=-1).long() - half
    return off.reshape(*lead, 2)


def shift(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift the last two axes by (dy, dx) with zero fill."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = img[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


def recenter(kernel: torch.Tensor, x: torch.Tensor, radius: int) -> tuple[torch.Tensor,
                                                                           torch.Tensor]:
    """Move each kernel's core (:func:`core_offset`) to the centre, X the opposite way.

    If A's core sits at offset τ from the centre, A ⊛ X = A(· + τ) ⊛ X(· − τ): the kernel
    is shifted by −τ and the activation by +τ (zero fill), then the kernel is put back on
    the unit sphere.

    Parameters
    ----------
    kernel : (R, E, K, K) tensor
    x : (R, H, W) tensor
    radius : int
        Half-width of the box whose energy locates the core.

    Returns
    -------
    kernel, x : tensors of the same shapes
    """
    offsets = core_offset(kernel, radius).tolist()
    ks, xs = [], []
    for i, (dy, dx) in enumerate(offsets):
        ks.append(shift(kernel[i], -dy, -dx) if (dy or dx) else kernel[i])
        xs.append(shift(x[i], dy, dx) if (dy or dx) else x[i])
    return normalise(torch.stack(ks)), torch.stack(xs)
