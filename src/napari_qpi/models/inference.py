"""Running trained networks on observations: latents, kernels, uncertainty."""

from __future__ import annotations

import numpy as np
import torch

from ..progress import Progress, checkpoint
from .weights import cached_set

#: Slices per network call: bounds memory for big stacks (256×256×128 and more).
BATCH = 16
#: Quarter turns each slice is seen in. Rotating a map rotates its kernel; the networks
#: learnt that only approximately, so each runs on the map turned by 0, 90, 180 and 270°
#: and its kernels, turned back, are averaged — the estimate then turns with the map.
ROTATIONS = 4
#: Posterior samples for the per-pixel uncertainty, spread evenly over the rotations.
UNCERTAINTY_SAMPLES = 8


def guide_map(positions: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """The guided encoder's input: 1 on each scatterer's nearest pixel (None: blind)."""
    if positions is None:
        return None
    g = np.zeros(shape, dtype=np.float32)
    p = np.rint(np.asarray(positions)).astype(int)
    g[np.clip(p[:, 0], 0, shape[0] - 1), np.clip(p[:, 1], 0, shape[1] - 1)] = 1.0
    return g


def _spread(vae, mu: torch.Tensor, logvar: torch.Tensor, anchor, rotations: int,
            gen: torch.Generator) -> np.ndarray:
    """Per-pixel spread of posterior samples drawn over every view: the posterior's width
    and the views' disagreement, relative to the unit-norm kernel."""
    per = max(1, UNCERTAINTY_SAMPLES // rotations)
    std = (0.5 * logvar).exp()
    eps = torch.randn((per, *mu.shape), generator=gen).to(mu.device)
    samples = vae.decode((mu[None] + eps * std[None]).flatten(0, 1), anchor)
    # (per, V·B, k, k) → (V·B, per, …) → turned back (V, B, per, …) → (V·per, B, …)
    samples = _back(samples.unflatten(0, (per, -1)).transpose(0, 1), rotations)
    return _unit(samples.transpose(1, 2).flatten(0, 1)).std(0).cpu().numpy()


def _views(a: torch.Tensor, views: int) -> list[torch.Tensor]:
    """(B, H, W) → the network inputs of the views, view r turned by r·(4 / V) quarter
    turns: one (V·B, H, W) batch for square maps, else one batch per view (a quarter turn
    swaps H and W). Their outputs, concatenated, are in view order."""
    turned = [torch.rot90(a, r * 4 // views, (-2, -1)) for r in range(views)]
    return [torch.cat(turned)] if all(t.shape == a.shape for t in turned) else turned


def _back(a: torch.Tensor, views: int) -> torch.Tensor:
    """(V·B, …, k, k) from :func:`_views` → (V, B, …, k, k), each view turned back."""
    return torch.stack([torch.rot90(b, -r * 4 // views, (-2, -1))
                        for r, b in enumerate(a.unflatten(0, (views, -1)))])


def _unit(k: torch.Tensor) -> torch.Tensor:
    return k / (k.flatten(-2).norm(dim=-1)[..., None, None] + 1e-12)


@torch.no_grad()
def predict(observation: np.ndarray, *, method: str = "two-stage", guide: np.ndarray | None = None,
            weights: str = "default", device: str = "cpu", seed: int = 0,
            rotations: int | None = None, uncertainty: bool = True):
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
        deterministic).
    rotations : {4, 2, 1}, optional
        Views of each slice, a quarter turn (4) or half turn (2) apart, that the network
        runs on; default :data:`ROTATIONS`. The kernel is the mean of their unit-norm
        kernels turned back, the uncertainty the spread of posterior samples drawn over
        all of them. 1 runs the network once, as trained (a latent and its decoding).
    uncertainty : bool
        Draw the posterior samples behind the uncertainty; without them (a start that
        only needs the kernel and latent) the uncertainty is None.

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
        The two-stage posterior mean of each slice as given (not turned).
    """
    rotations = ROTATIONS if rotations is None else rotations
    if rotations not in (1, 2, 4):
        raise ValueError(f"rotations must be 1, 2 or 4 quarter-turn steps, got {rotations!r}")
    _, nets, _ = cached_set(weights, device)
    e = observation.shape[0]
    kernels, spreads, latents = [], [], []
    gen = torch.Generator(device="cpu").manual_seed(seed)
    g = None if guide is None else torch.from_numpy(np.asarray(guide, np.float32))
    for start in range(0, e, BATCH):
        y = torch.from_numpy(np.asarray(observation[start:start + BATCH], np.float32)).to(device)
        gb = None if g is None else g[None].expand(len(y), *g.shape).to(device)
        ys = _views(y, rotations)
        gs = [None] * len(ys) if gb is None else _views(gb, rotations)
        if method == "one-step":
            k = torch.cat([nets["onestep"](v, gv) for v, gv in zip(ys, gs)])
            k = _unit(_back(k, rotations)).mean(0)
            kernels.append(k.cpu().numpy())
            spreads.append(None)
            latents.append(None)
        else:
            vae = nets["vae"]
            anchors, enc = [], []
            for v, gv in zip(ys, gs):  # a view of a batch of 256² slices takes ~0.3 s
                anchors.append(vae.anchor_of(v))
                checkpoint()
                enc.append(nets["encoder"].encode_observations(v, gv, anchors[-1]))
                checkpoint()
            mu, logvar = torch.cat([m for m, _ in enc]), torch.cat([lv for _, lv in enc])
            anchor = None if anchors[0] is None else torch.cat(anchors)
            checkpoint()  # a batch of a large grid takes seconds: Cancel between its parts
            kernels.append(_unit(_back(vae.decode(mu, anchor), rotations)).mean(0).cpu().numpy())
            latents.append(mu[:len(mu) // rotations].cpu().numpy())
            checkpoint()
            spreads.append(_spread(vae, mu, logvar, anchor, rotations, gen)
                           if uncertainty else None)
        yield Progress(f"{method} network", min(start + BATCH, e), e)
    kernel = np.concatenate(kernels)
    unc = None if spreads[0] is None else np.concatenate(spreads)
    lat = None if latents[0] is None else np.concatenate(latents)
    return kernel, unc, lat
