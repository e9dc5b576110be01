"""Running trained networks on observations: latents, kernels, uncertainty."""

from __future__ import annotations

import numpy as np
import torch

from ..progress import Progress
from .weights import cached_set

#: Slices per network call: bounds memory for big stacks (256×256×128 and more).
BATCH = 16
#: Posterior samples for the per-pixel uncertainty.
UNCERTAINTY_SAMPLES = 16


def guide_map(positions: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if positions is None:
        return None
    g = np.zeros(shape, dtype=np.float32)
    p = np.rint(np.asarray(positions)).astype(int)
    g[np.clip(p[:, 0], 0, shape[0] - 1), np.clip(p[:, 1], 0, shape[1] - 1)] = 1.0
    return g


_guide_map = guide_map  # the name learned.py imports today


@torch.no_grad()
def predict(observation: np.ndarray, *, method: str = "two-stage", guide: np.ndarray | None = None,
            weights: str = "default", device: str = "cpu", seed: int = 0):
    """Predict kernels slice by slice, in batches; a generator of progress.

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Maps (any normalisation; each slice is z-scored inside).
    method : {"two-stage", "one-step"}
    guide : (H, W) ndarray, optional
        Scatterer map (1 at known scatterers); None for blind.
    weights : str
        A shipped weight set name or a folder.
    device : str
    seed : int
        Seed of the posterior samples behind the uncertainty (the kernel itself is
        the decoded posterior mean, deterministic).

    Yields
    ------
    Progress
        ``"<method> network"``, slices done of all, after each batch.

    Returns
    -------
    kernel : (E, k, k) ndarray
    uncertainty : (E, k, k) ndarray or None
        None for the one-step baseline.
    latent : (E, d) ndarray or None
    """
    _, nets, _ = cached_set(weights, device)
    e = observation.shape[0]
    kernels, spreads, latents = [], [], []
    gen = torch.Generator(device="cpu").manual_seed(seed)
    g = None if guide is None else torch.from_numpy(np.asarray(guide, np.float32))
    for start in range(0, e, BATCH):
        y = torch.from_numpy(np.asarray(observation[start:start + BATCH], np.float32)).to(device)
        gb = None if g is None else g[None].expand(len(y), *g.shape).to(device)
        if method == "one-step":
            k = nets["onestep"](y, gb)
            kernels.append(k.cpu().numpy())
            spreads.append(None)
            latents.append(None)
        else:
            mu, logvar = nets["encoder"].encode_observations(y, gb)
            vae = nets["vae"]
            anchor = vae.anchor_of(y)
            kernels.append(vae.decode(mu, anchor).cpu().numpy())
            std = (0.5 * logvar).exp()
            eps = torch.randn((UNCERTAINTY_SAMPLES, *mu.shape), generator=gen).to(device)
            samples = vae.decode((mu[None] + eps * std[None]).flatten(0, 1),
                                 None if anchor is None
                                 else anchor.repeat(UNCERTAINTY_SAMPLES, 1, 1))
            samples = samples.view(UNCERTAINTY_SAMPLES, len(y), *samples.shape[-2:])
            # the kernel is normalised later; express the spread relative to its norm
            norm = kernels[-1].reshape(len(y), -1)
            norm = np.linalg.norm(norm, axis=1)[:, None, None] + 1e-12
            spreads.append(samples.std(0).cpu().numpy() / norm)
            latents.append(mu.cpu().numpy())
        yield Progress(f"{method} network", min(start + BATCH, e), e)
    kernel = np.concatenate(kernels)
    unc = None if spreads[0] is None else np.concatenate(spreads)
    lat = None if latents[0] is None else np.concatenate(latents)
    return kernel, unc, lat
