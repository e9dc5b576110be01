"""auto's choice of candidate, replayed: which candidate would each rule keep?

``auto`` (``extraction/methods/auto.py``) runs its candidates — two-stage, power, the
SBD refinement of each and the latent fit — and keeps the latent fit unless another
candidate's cross-validated residual is lower by more than ``AutoConfig.prefer_margin`` (or the fit
predicts held-out pixels worse than its two-stage start). For every map (our own
evaluation stream of physics classes, never the foreign set) this records each
candidate's kernel score and CV residual once, then replays :func:`auto.choose` under
the shipped margin and under ``--margin`` and prints the paired per-map difference of
what each rule returns (the choice is a pure function of the CV scores, so one run
scores both rules exactly as ``extract()`` would return them).

    PYTHONPATH=src python scripts/auto_choice.py --seed 3 --snr 20 --n 58 --out runs/c.json
    PYTHONPATH=src python scripts/auto_choice.py --load runs/c.json runs/d.json

Results are in docs/extraction.md §6.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict

import numpy as np
import torch

import napari_qpi.extraction.methods.auto as auto_mod
from napari_qpi.evaluation.classes import class_bank, class_maps, paired
from napari_qpi.evaluation.score import score
from napari_qpi.extraction.config import AutoConfig
from napari_qpi.extraction.extract import extract

SHIPPED = AutoConfig().prefer_margin


def record(split: str, seed: int, snr: float, n: int, weights: str) -> list[dict]:
    """Every candidate's scores on ``n`` maps of ``split`` at ``snr``."""
    seen: dict = {}
    compete = auto_mod.compete

    def keep(problem):  # auto's own competition, its candidates kept for scoring
        cands = yield from compete(problem)
        seen.update(cands=cands)
        return cands

    auto_mod.compete = keep
    try:
        bank = class_bank(split, n, seed=seed)
        maps = class_maps(bank, snr=snr, seed=seed).numpy().astype(float)
        out = []
        for i, obs in enumerate(maps):
            extract(obs, method="auto", weights=weights, rng=i)
            truth = bank.windows[i].numpy()
            rec = {"split": split, "seed": seed, "snr": snr,
                   "defect": bank.families[i].split("/")[2], "candidates": {}}
            for name, c in seen["cands"].items():
                s = score(truth, np.asarray(c.result.kernel, float))
                rec["candidates"][name] = {
                    "tail": s["tail_similarity"], "aligned": s["aligned_tail_similarity"],
                    "cv": float(c.cv_residual)}
            out.append(rec)
        return out
    finally:
        auto_mod.compete = compete


def replay(recs: list[dict], margin: float) -> list[dict]:
    """The candidate each map's auto would keep with ``prefer_margin = margin``."""
    return [r["candidates"][auto_mod.choose({k: v["cv"] for k, v in r["candidates"].items()},
                                            margin)] for r in recs]


def report(recs: list[dict], margin: float) -> None:
    old, new = replay(recs, SHIPPED), replay(recs, margin)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(recs):
        for g in (f"SNR {r['snr']:g}", f"{r['split']} {r['defect']}", "all"):
            groups[g].append(i)
    print(f"auto with prefer_margin {SHIPPED} (shipped) → {margin}; "
          f"{len(recs)} maps. Median tail similarity (aligned), shipped → new; paired "
          "per-map difference new − shipped: median / mean / better by > 0.05 / worse")
    print("| group | n | shipped | new | paired (headline) | paired (aligned) |\n"
          "|---|---|---|---|---|---|")
    for g in sorted(groups, key=lambda g: (g == "all", g)):
        ix = groups[g]
        a = np.array([[old[i]["tail"], new[i]["tail"], old[i]["aligned"],
                       new[i]["aligned"]] for i in ix])
        print(f"| {g} | {len(ix)} | {np.median(a[:, 0]):.3f} ({np.median(a[:, 2]):.3f}) | "
              f"{np.median(a[:, 1]):.3f} ({np.median(a[:, 3]):.3f}) | "
              f"{paired(a[:, 1] - a[:, 0])} | {paired(a[:, 3] - a[:, 2])} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split", default="held_out", choices=("held_out", "seen"))
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--snr", type=float, default=5.0)
    p.add_argument("--n", type=int, default=58)
    p.add_argument("--weights", default="seen")
    p.add_argument("--margin", type=float, default=float("inf"),
                   help="the margin to compare with the shipped one (default: always "
                        "the latent fit, unless its guard fails)")
    p.add_argument("--out", default=None, help="save the records as JSON")
    p.add_argument("--load", nargs="+", default=None, metavar="JSON",
                   help="replay saved records instead of running")
    a = p.parse_args(argv)
    if a.load:
        recs = [r for path in a.load for r in json.load(open(path))]
    else:
        torch.set_num_threads(1)
        os.environ.setdefault("NAPARI_QPI_THREADS", "1")  # what extract reads
        recs = record(a.split, a.seed, a.snr, a.n, a.weights)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(recs, f)
    report(recs, a.margin)


if __name__ == "__main__":
    main()
