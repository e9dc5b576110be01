"""Observations with many scatterers: linear sum of kernels, or the full
multi-impurity T-matrix in which scatterers interfere."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft as sfft

from .bands import Band
from .kernels import Defect, GreensFunction, flip, kernel_grid, tip_blur


def place(kernel_grids: np.ndarray, activations: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Σ_t K_t ⊛ X_t by FFT on the kernels' grid.

    Parameters
    ----------
    kernel_grids : (T, E, M, M) ndarray
        Full-extent kernels in fft ordering (scatterer at index 0).
    activations : (T, H, W) ndarray
        Scatterer maps, one per defect type, H, W ≤ M / 2.
    shape : (int, int)
        (H, W) of the observation.

    Returns
    -------
    (E, H, W) ndarray
    """
    m0, m1 = kernel_grids.shape[-2:]
    h, w = shape
    xpad = np.zeros((activations.shape[0], m0, m1))
    xpad[:, :h, :w] = activations
    xf = sfft.rfft2(xpad, axes=(-2, -1), workers=-1)  # (T, M, M//2+1)
    kf = sfft.rfft2(kernel_grids, axes=(-2, -1), workers=-1)  # (T, E, ...)
    y = sfft.irfft2((kf * xf[:, None]).sum(0), s=(m0, m1), axes=(-2, -1), workers=-1)
    return y[:, :h, :w]


def multi_impurity(
    gf: GreensFunction,
    band: Band,
    defects: Sequence[Defect],
    positions: np.ndarray,
    types: np.ndarray,
    strengths: np.ndarray,
    shape: tuple[int, int],
    *,
    blur: float = 1.0,
) -> np.ndarray:
    """δρ of many scatterers by the full multi-impurity T-matrix.

    δρ(r) = −(1/π) Im Σᵢⱼ G0(r − rᵢ) Tᵢⱼ G0(rⱼ − r), T = (1 − V G)⁻¹ V, with every
    site of every defect in V; positions are integer pixels (row, col) on the map.

    Parameters
    ----------
    gf : GreensFunction
        Built on a grid M ≥ 2·max(H, W) so offsets across the map do not wrap.
    defects : sequence of Defect
        Defect types.
    positions : (N, 2) int ndarray
    types : (N,) int ndarray
        Index into ``defects`` per scatterer.
    strengths : (N,) ndarray
        Multiplier of the type's potential per scatterer.
    shape : (int, int)
        (H, W) of the map.

    Returns
    -------
    (E, H, W) ndarray
    """
    h, w = shape
    m = gf.m
    # Every site: integer pixel + sub-pixel offset (one per defect site) + potential.
    site_pix, site_off_key, site_pot, site_owner = [], [], [], []
    offsets: dict[tuple[float, float], np.ndarray] = {}
    for q, (p, t, s) in enumerate(
            zip(np.asarray(positions, int), np.asarray(types, int), strengths)):
        offs, pots = defects[t].sites(band, gf.pixel_size)
        for o, v in zip(offs, pots):
            key = (round(float(o[0]), 9), round(float(o[1]), 9))
            offsets[key] = o
            site_pix.append(p)
            site_off_key.append(key)
            site_pot.append(v * s)
            site_owner.append(q)
    owner = np.asarray(site_owner)
    pix = np.asarray(site_pix, int)
    pot = np.asarray(site_pot, float)
    n = len(pot)
    e = gf.gk.shape[0]
    keys = list(offsets)

    # Site-site matrix G0(p_i + o_i − p_j − o_j), one grid per offset difference.
    # Sites of one defect sit on lattice sites of each other: the bare lattice G0.
    # Different scatterers sit at arbitrary pixels, where the bare lattice G0 is a
    # comb that vanishes off the lattice: they couple through the Wannier-dressed
    # propagator (form factor at both ends), the continuum envelope of the lattice G0.
    gmat = np.empty((e, n, n), dtype=complex)
    dp = pix[:, None, :] - pix[None, :, :]
    same = owner[:, None] == owner[None, :]
    diff_grids: dict[tuple, np.ndarray] = {}
    kidx = np.array([keys.index(k) for k in site_off_key])
    for a in range(len(keys)):
        for b in range(len(keys)):
            pair = (kidx[:, None] == a) & (kidx[None, :] == b)
            d = offsets[keys[a]] - offsets[keys[b]]
            key = (round(float(d[0]), 9), round(float(d[1]), 9))
            for dressed, mask in ((False, pair & same), (True, pair & ~same)):
                if not mask.any():
                    continue
                if (key, dressed) not in diff_grids:
                    # G0(r + d) as a function of integer r
                    diff_grids[key, dressed] = (
                        gf.site(-d) if not dressed else gf.site(-d, form=2))
                grid = diff_grids[key, dressed]
                ii, jj = np.nonzero(mask)
                gmat[:, ii, jj] = grid[:, dp[ii, jj, 0] % m, dp[ii, jj, 1] % m]
    vmat = np.diag(pot).astype(complex)
    tmat = np.linalg.solve(np.eye(n)[None] - vmat[None] @ gmat, np.broadcast_to(vmat, (e, n, n)))

    # evaluate on the map plus a margin, so the tip blur sees the signal beyond the
    # map edge (as the linear model's blurred kernels do) instead of zeros
    pad = int(np.ceil(4 * blur)) if blur > 0 else 0
    h, w = h + 2 * pad, w + 2 * pad
    h0, w0 = shape

    def windows(grid: np.ndarray) -> np.ndarray:
        """grid[d] for offsets d = r − p over every map pixel r and scatterer pixel p,
        as an (E, h0 + h, w0 + w) array: pixel r of a scatterer at p is at
        [h0 − p0 + r0 + pad, w0 − p1 + r1 + pad]."""
        iy = (np.arange(h0 + h) - h0 - pad) % m
        ix = (np.arange(w0 + w) - w0 - pad) % m
        return grid[:, iy][:, :, ix]

    ext_in = [windows(gf.tip(offsets[k])) for k in keys]  # G0(r − o − p)
    ext_back = [windows(flip(gf.tip(-offsets[k]))) for k in keys]  # G0(o + p − r)
    cuts = [(slice(h0 - py, h0 - py + h), slice(w0 - px, w0 - px + w)) for py, px in pix]
    # The contraction Σ_i into_i (T @ back)_i costs E·n²·H·W: done in single precision
    # (relative error ~1e-7, below the float32 of simulated maps), in energy chunks
    # that bound memory at ~32 MB per array.
    acc = np.empty((e, h * w), dtype=np.complex64)
    chunk = max(1, int(2**22 // max(1, n * h * w)))
    t64 = tmat.astype(np.complex64)
    for e0 in range(0, e, chunk):
        sl = slice(e0, min(e, e0 + chunk))
        into = np.stack([ext_in[kidx[i]][sl, cy, cx] for i, (cy, cx) in enumerate(cuts)],
                        axis=1).astype(np.complex64).reshape(-1, n, h * w)  # (c, n, P)
        back = np.stack([ext_back[kidx[i]][sl, cy, cx] for i, (cy, cx) in enumerate(cuts)],
                        axis=1).astype(np.complex64).reshape(-1, n, h * w)
        acc[sl] = np.einsum("cnp,cnp->cp", into, t64[sl] @ back)
    rho = -acc.imag.astype(float).reshape(e, h, w) / np.pi
    if blur > 0:
        full = np.zeros((e, m, m))
        full[:, :h, :w] = rho
        # blur on a zero-padded grid (the map is not periodic), then drop the margin
        rho = tip_blur(full, blur)[:, pad : h - pad, pad : w - pad]
    return rho


def linear(
    gf: GreensFunction,
    band: Band,
    defects: Sequence[Defect],
    positions: np.ndarray,
    types: np.ndarray,
    strengths: np.ndarray,
    shape: tuple[int, int],
    *,
    blur: float = 1.0,
    born: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Σ_t K_t ⊛ X_t with full-extent single-defect kernels.

    Returns the observation (E, H, W) and the kernel grids (T, E, M, M).
    """
    grids = np.stack([kernel_grid(gf, d, band, born=born, blur=blur) for d in defects])
    act = activation_maps(len(defects), positions, types, strengths, shape)
    return place(grids, act, shape), grids


def activation_maps(
    n_types: int, positions: np.ndarray, types: np.ndarray, strengths: np.ndarray,
    shape: tuple[int, int],
) -> np.ndarray:
    """(T, H, W) maps with each scatterer's strength at its pixel."""
    act = np.zeros((n_types, *shape))
    pos = np.asarray(positions, int)
    np.add.at(act, (np.asarray(types, int), pos[:, 0], pos[:, 1]), strengths)
    return act
