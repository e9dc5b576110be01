"""Figures the CLI writes: observation, its q-space image, kernels side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .metrics import core_radius, max_shift

#: The caption under ``napari-qpi demo``'s figure.
TAIL_CAPTION = ("tail similarity: best normalised overlap of the true and extracted "
                "kernels after zeroing the core (r ≤ {r} px) in both, over shifts ≤ {s} px; "
                "1 = same oscillating tail, 0 = none of it (sign and scale do not matter)")


def qspace(image: np.ndarray) -> np.ndarray:
    """|FFT| of a map with the mean removed, zero frequency in the centre."""
    img = np.asarray(image, dtype=float)
    return np.abs(np.fft.fftshift(np.fft.fft2(img - img.mean())))


def _extent(shape, step: float, centred: bool) -> list[float]:
    """imshow extent (left, right, bottom, top) of pixel centres ``step`` apart."""
    h, w = shape
    y0 = -(h // 2) * step if centred else 0.0
    x0 = -(w // 2) * step if centred else 0.0
    return [x0 - step / 2, x0 + (w - 0.5) * step, y0 + (h - 0.5) * step, y0 - step / 2]


def _panel(fig, ax, img, title, *, step, unit, centred, cmap="RdBu_r", vmax=None):
    sym = cmap == "RdBu_r"
    v = vmax or np.percentile(np.abs(img), 99.5) or 1.0
    im = ax.imshow(img, cmap=cmap, vmin=-v if sym else None, vmax=v if sym else None,
                   extent=_extent(img.shape, step, centred))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=ax, shrink=0.75, pad=0.02).ax.tick_params(labelsize=7)


def overview_figure(path, observation, panels: dict[str, np.ndarray], *,
                    pixel_size: float | None = None, energy: float | None = None,
                    title: str = "", caption: str | None = None) -> Path:
    """Write a PNG: the observation, its |FFT| and the ``panels``.

    Parameters
    ----------
    path : path
        PNG to write (its folder is created).
    observation : (H, W) ndarray
        One energy slice.
    panels : dict of str to ndarray
        Kernels (axes centred on the scatterer) and residuals (names starting with
        "residual": map axes, on the observation's colour scale, which is how a fit is
        judged).
    pixel_size : float, optional
        Å per pixel: axes in Å and q in Å⁻¹ (q = 2π/λ); pixels and px⁻¹ when None.
    energy : float, optional
        meV, shown in the observation's title.
    title : str
        Above the panels.
    caption : str, optional
        Below the panels; default: what tail similarity is, for the kernel window.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step = 1.0 if pixel_size is None else float(pixel_size)
    unit, qunit = ("px", "q (px⁻¹)") if pixel_size is None else ("Å", "q (Å⁻¹)")
    n = 2 + len(panels)
    fig, axs = plt.subplots(1, n, figsize=(3.0 * n, 3.6), constrained_layout=True)
    obs = observation - observation.mean()
    _panel(fig, axs[0], obs, "observation" + (f" ({energy:.0f} meV)" if energy is not None
                                              else ""), step=step, unit=unit, centred=False)
    q = qspace(observation)
    dq = 2 * np.pi / (np.array(q.shape) * step)  # Å⁻¹ per q pixel, per axis
    im = axs[1].imshow(np.log1p(q / (np.median(q) or 1.0)), cmap="magma",
                       extent=_extent(q.shape, 1.0, True) * np.repeat(dq[::-1], 2))
    axs[1].set_title("q-space log(1 + |FFT|/median)", fontsize=9)
    axs[1].set_xlabel(qunit, fontsize=8)
    axs[1].tick_params(labelsize=7)
    fig.colorbar(im, ax=axs[1], shrink=0.75, pad=0.02).ax.tick_params(labelsize=7)
    scale = np.percentile(np.abs(obs), 99.5)
    for ax, (name, img) in zip(axs[2:], panels.items()):
        residual = name.startswith("residual")
        _panel(fig, ax, img, name, step=step, unit=unit, centred=not residual,
               vmax=scale if residual else None)
    if title:
        fig.suptitle(title, fontsize=10)
    if caption is None:
        k = next((p.shape[-1] for name, p in panels.items()
                  if not name.startswith("residual")), 65)
        caption = TAIL_CAPTION.format(r=core_radius(k), s=max_shift(k))
    if caption:
        fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
        fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=7.5, wrap=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
