"""Figures the CLI writes: observation, its q-space image, kernels side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def qspace(image: np.ndarray) -> np.ndarray:
    """|FFT| of a map with the mean removed, zero frequency in the centre."""
    img = np.asarray(image, dtype=float)
    return np.abs(np.fft.fftshift(np.fft.fft2(img - img.mean())))


def _sym(ax, img, title, cmap="RdBu_r", vmax=None):
    v = vmax or np.percentile(np.abs(img), 99.5) or 1.0
    ax.imshow(img, cmap=cmap, vmin=-v if cmap == "RdBu_r" else 0, vmax=v)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def overview_figure(path, observation, panels: dict[str, np.ndarray], *, energy=None,
                    title="") -> Path:
    """Write a PNG: the observation, its |FFT| and the ``panels`` (kernels, and
    residuals on the observation's colour scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 2 + len(panels)
    fig, axs = plt.subplots(1, n, figsize=(2.6 * n, 2.9), constrained_layout=True)
    obs = observation - observation.mean()
    _sym(axs[0], obs, "observation" + (f" ({energy:.0f} meV)" if energy is not None else ""))
    q = qspace(observation)
    axs[1].imshow(np.log1p(q / np.median(q)), cmap="magma")
    axs[1].set_title("q-space |FFT|", fontsize=9)
    axs[1].set_xticks([])
    axs[1].set_yticks([])
    scale = np.percentile(np.abs(obs), 99.5)
    for ax, (name, img) in zip(axs[2:], panels.items()):
        # a residual is read against the data: same colour scale as the observation
        _sym(ax, img, name, vmax=scale if name.startswith("residual") else None)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
