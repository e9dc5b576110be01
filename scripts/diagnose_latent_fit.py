"""What limits the latent fit (auto's kept candidate) on physics classes: its start or
its objective? And can a score without ground truth tell a better fit?

For each map (our own evaluation stream, never the foreign set) the latent fit runs three
times on the same pixels, from three starts:

- ``encoder``: as ``auto`` runs it — the blind two-stage latent, re-read by the guided
  encoder with the peaks of the activation its kernel fits (self-guidance);
- ``true guide``: the guided encoder given the true scatterer positions instead of those
  peaks (an oracle: how much the self-guidance positions cost);
- ``true latent``: the stage-1 encoding of the true kernel (an oracle: is the right
  kernel a minimum of the fit's objective?).

It also reports how many self-guidance peaks lie within 1 px of a true scatterer — its
defect's first site (where kernels are centred) or its brightest point
(:func:`~napari_qpi.models.data.bright_offsets`) — and,
on the maps where the true-latent start ends clearly better than the encoder start, how
often the cross-validated residual (all held-out pixels) and its tail-aware variant (only
held-out pixels farther than ``--away`` px from the fit's scatterers, where only kernel
tails reach) prefer it.

    PYTHONPATH=src python scripts/diagnose_latent_fit.py --n 40 --seed 5

Results are in docs/models.md ("What limits the latent fit").
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

import numpy as np
import torch

from napari_qpi.evaluation.classes import class_bank
from napari_qpi.evaluation.score import score
from napari_qpi.extraction.extract import prepare, run_method
from napari_qpi.extraction.methods import latent
from napari_qpi.extraction.methods.learned import run_network
from napari_qpi.extraction.quality import cv_residual, holdout_mask
from napari_qpi.extraction.registry import METHODS, MethodResult, Problem
from napari_qpi.extraction.selfguide import self_guide
from napari_qpi.models.data import bright_offsets, canonical_sign, make_observations
from napari_qpi.models.inference import predict
from napari_qpi.models.weights import cached_set
from napari_qpi.physics.classes import CLASS_EVAL_STREAM
from napari_qpi.progress import drain


def _hits(peaks, positions) -> float:
    """Fraction of the peaks within 1 px of one of the positions (NaN without peaks)."""
    if peaks is None:
        return np.nan
    dist = np.sqrt(((peaks[:, None] - positions[None]) ** 2).sum(-1)).min(1)
    return float(np.mean(dist <= 1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="seen")
    p.add_argument("--split", default="held_out", choices=("held_out", "seen"))
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--snr", type=float, default=5.0)
    p.add_argument("--away", type=float, default=4.0)
    p.add_argument("--clearly", type=float, default=0.05,
                   help="tail-similarity difference that counts as clearly better")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("NAPARI_QPI_THREADS", "1")  # what extract reads
    bank = class_bank(a.split, a.n, seed=a.seed)
    # the maps of evaluation.classes.class_maps, with their true activations
    gen = torch.Generator().manual_seed(CLASS_EVAL_STREAM + a.seed)
    maps, acts = make_observations(bank, torch.arange(len(bank)), 128, gen,
                                   snr_range=(a.snr, a.snr))
    maps, acts = maps.numpy().astype(float), acts.numpy()
    vae = cached_set(a.weights, "cpu")[1]["vae"]
    rows = []
    for i, obs in enumerate(maps):
        y, _, noise, _ = prepare(obs[None])
        problem = Problem(y, None, 65, "cpu", None, noise, a.weights, i, max_window=65)
        drain(run_method(METHODS["two-stage"], problem))  # sets the working zoom
        if problem.info.get("working_zoom", 1.0) != 1.0:
            continue  # the latent fit runs at the map's own scale only
        # as refine.compete: the fit starts from one view, a latent and its decoding
        start = drain(run_network(problem, "two-stage", rotations=1))
        truth = bank.windows[i].numpy()
        t = torch.as_tensor(truth * canonical_sign(truth) / np.linalg.norm(truth),
                            dtype=torch.float32)[None]
        with torch.no_grad():
            anchor = vae.anchor_of(torch.as_tensor(y, dtype=torch.float32))
            z = vae.encode(t, anchor)[0]
            k = vae.decode(z, anchor)
        oracle = MethodResult(k.numpy(), None, None, z.numpy())
        true_pos = np.argwhere(acts[i] > 0)
        kg, _, zg = drain(predict(y, method="two-stage", guide=(acts[i] > 0).astype(np.float32),
                                  weights=a.weights, rotations=1))
        train = holdout_mask(y.shape[-2:], i)
        guide = self_guide(y, start.kernel, train)
        peaks = None if guide is None else np.argwhere(guide > 0)
        row = {"defect": bank.families[i].split("/")[2], "hit": _hits(peaks, true_pos),
               "hit_bright": _hits(peaks, true_pos + bright_offsets(truth[None])[0])}
        for name, st in (("encoder", start), ("guide", MethodResult(kg, None, None, zg)),
                         ("oracle", oracle)):
            # oracle starts are not re-read with self-guidance (that would replace them)
            kern = drain(latent.latent_fit(problem, st, train, reread=name == "encoder")).kernel
            row[name] = score(truth, kern)["tail_similarity"]
            for suffix, away in (("_cv", None), ("_tail_cv", a.away)):
                row[name + suffix] = cv_residual(y, kern, noise=noise, rng=i, away=away)
        rows.append(row)
    print(f"{a.split} classes, seed {a.seed}, SNR {a.snr:g}, {len(rows)} maps, "
          f"`{a.weights}` weights; tail similarity of the latent fit by start, median "
          "(mean); self-guidance peaks within 1 px of a true scatterer, median:")
    by = defaultdict(list)
    for r in rows:
        by[r["defect"]].append(r)
        by["all"].append(r)
    print("| defect | n | encoder | true guide | true latent | peaks on scatterers "
          "(first site / brightest point) |\n|---|---|---|---|---|---|")
    for d in sorted(by, key=lambda d: (d == "all", d)):
        cells = [f"{np.median([r[s] for r in by[d]]):.3f} ({np.mean([r[s] for r in by[d]]):.3f})"
                 for s in ("encoder", "guide", "oracle")]
        print(f"| {d} | {len(by[d])} | " + " | ".join(cells)
              + f" | {np.nanmedian([r['hit'] for r in by[d]]):.2f} / "
              f"{np.nanmedian([r['hit_bright'] for r in by[d]]):.2f} |")
    gap = [r for r in rows if r["oracle"] - r["encoder"] > a.clearly]
    print(f"maps where the oracle start ends clearly better (> {a.clearly}): {len(gap)}")
    for s, label in (("_cv", "CV residual"), ("_tail_cv", f"tail-aware CV (> {a.away:g} px)")):
        pref = np.mean([r["oracle" + s] < r["encoder" + s] for r in gap]) if gap else np.nan
        print(f"  {label} prefers the oracle fit on {pref:.0%} of them")


if __name__ == "__main__":
    main()
