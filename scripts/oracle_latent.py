"""How well the stage-1 decoder *can* draw a true kernel: the latent that decodes
closest to it, on its own map's power kernel, against what the latents we have give.

For each true kernel (canonical sign, unit norm) and its map, it prints the median tail
similarity of
- the map's power kernel (what an anchored decoder starts from),
- the stage-1 ceiling (the VAE encoder's posterior mean of the true kernel, decoded),
- the oracle latent: gradient ascent on the latent, from that posterior mean, on the
  cosine of the tails (+ 0.2 × the cosine of the whole kernels) with the true kernel.

The oracle uses the truth, so it is a bound, not a method: above the target, the decoder
is not what limits a learned method; the latent it is given is. ``--foreign`` measures
the foreign set's kernels (measure only, never tuned on); otherwise held-out classes
from the evaluation stream.

    PYTHONPATH=src python scripts/oracle_latent.py --foreign
    PYTHONPATH=src python scripts/oracle_latent.py --weights seen --n 116

Results are in docs/models.md ("What limits the foreign maps").
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from napari_qpi.evaluation.classes import class_bank, class_maps
from napari_qpi.evaluation.metrics import tail_similarity
from napari_qpi.models.data import canonical_sign
from napari_qpi.models.weights import cached_set


def _cases(foreign: bool, n: int, seed: int):
    """(kinds, unit kernels (N, k, k), maps (N, H, W))."""
    if foreign:
        from napari_qpi.evaluation.foreign import default_directory, load_foreign

        cases = load_foreign(default_directory())
        rows = [(c.defect, c.kernel, c.observation) for c in cases if c.set == "maps"]
        rows += [("stack slices", kk, o) for c in cases if c.set == "stacks"
                 for kk, o in zip(c.kernel, c.observation)]
        kinds, kernels, maps = zip(*rows)
        maps = torch.as_tensor(np.stack(maps).astype(np.float32))
    else:
        bank = class_bank("held_out", n, seed=seed)
        kinds, kernels = [f.split("/")[2] for f in bank.families], bank.windows.numpy()
        maps = class_maps(bank, seed=seed)
    k = np.stack([c * canonical_sign(c) / np.linalg.norm(c) for c in np.asarray(kernels)])
    return np.array(kinds), torch.as_tensor(k, dtype=torch.float32), maps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="default: 'default' with --foreign, "
                   "else 'seen'")
    p.add_argument("--foreign", action="store_true")
    p.add_argument("--n", type=int, default=116)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args(argv)
    torch.manual_seed(0)
    _, nets, _ = cached_set(a.weights or ("default" if a.foreign else "seen"))
    vae = nets["vae"]
    if not vae.cfg.anchor:
        raise SystemExit("this script measures anchored weight sets")
    for q in vae.parameters():
        q.requires_grad_(False)
    kinds, k, maps = _cases(a.foreign, a.n, a.seed)
    anchor = vae.anchor_of(maps)
    h = k.shape[-1] // 2
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    tail = torch.as_tensor(np.hypot(yy, xx) > max(3, k.shape[-1] // 16), dtype=torch.float32)
    with torch.no_grad():
        z0 = vae.encode(k, anchor)[0]
        ceiling = vae.decode(z0, anchor)
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    cos = torch.nn.functional.cosine_similarity
    for _ in range(a.steps):
        d = vae.decode(z, anchor)
        loss = -(cos((d * tail).flatten(1), (k * tail).flatten(1))
                 + 0.2 * cos(d.flatten(1), k.flatten(1))).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        oracle = vae.decode(z, anchor)
    groups = list(dict.fromkeys(kinds))
    print("| kernels from | " + " | ".join(["maps", *groups]) + " |")
    print("|---" * (len(groups) + 2) + "|")
    for name, est in (("power kernel (the anchor)", anchor), ("stage-1 ceiling", ceiling),
                      ("oracle latent", oracle)):
        s = np.array([tail_similarity(t, e) for t, e in zip(k.numpy(), est.numpy())])
        cells = [np.median(s[kinds != "stack slices"])] + [np.median(s[kinds == g])
                                                           for g in groups]
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
