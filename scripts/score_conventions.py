"""Whole ``extract()`` calls on physics-class maps, scored against the true kernel
centred on the defect's first site (the benchmark's truth) and on its brightest point.

Which site a multi-site defect's kernel is centred on is a labelling the map cannot
show; the tail similarity (primer §5) zeroes the core around each kernel's centre pixel,
so it depends on that labelling. This prints both scores, by defect, for the methods
given. ``--negate`` flips the maps' sign (scatterers that depress the local density of
states), which a method must handle as well as the maps as simulated.

    PYTHONPATH=src python scripts/score_conventions.py --weights seen
    PYTHONPATH=src python scripts/score_conventions.py --weights seen --negate --n 116
    PYTHONPATH=src python scripts/score_conventions.py --weights seen --rotations 1
    PYTHONPATH=src python scripts/score_conventions.py --weights RUN --against seen
    PYTHONPATH=src python scripts/score_conventions.py --labelling

``--labelling`` scores no method: the true kernels themselves, centred on another site,
on the brightest point or on the centre of the sites, against the first-site truth — the
cost of the labelling alone, by the tail similarity and by the aligned tail similarity
(``evaluation.metrics``; a diagnostic, blind to the labelling) — and, for the price of
the aligned score, a tail-less blob by both. The method tables print
the aligned score beside the two conventions.

``--against`` runs the same calls with a second weight set and prints the paired
per-map differences (first-site truth): on 116 maps the median of the scores moves by
more than the median of the differences where the distribution is steep (round 9,
docs/notes/2026-11-26-foreign-limits-anchored-encoder.md), so a rule comparing two sets
should read the paired table.

Results are in docs/notes/2026-11-26-latent-fit-limits.md ("Rounds 6 and 7") and
docs/extraction.md §6. Our own
evaluation stream only, never the foreign set.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

import numpy as np
import torch

from napari_qpi.evaluation.classes import class_bank, class_maps, paired
from napari_qpi.evaluation.score import score
from napari_qpi.extraction.extract import extract
from napari_qpi.models.data import recentre_bank


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="seen")
    p.add_argument("--split", default="held_out", choices=("held_out", "seen"))
    p.add_argument("--n", type=int, default=116)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snr", type=float, default=5.0)
    p.add_argument("--methods", default="auto,two-stage")
    p.add_argument("--negate", action="store_true", help="flip the sign of every map")
    p.add_argument("--rotations", type=int, choices=(1, 2, 4), default=None,
                   help="views per slice of the networks (default: the shipped 4)")
    p.add_argument("--against", default=None, metavar="WEIGHTS",
                   help="also run a second weight set and print paired differences")
    p.add_argument("--labelling", action="store_true",
                   help="only score the true kernels themselves, centred elsewhere")
    a = p.parse_args(argv)
    if a.labelling:
        return labelling(a.split, a.n, a.seed)
    if a.rotations is not None:
        import napari_qpi.models.inference as inference

        inference.ROTATIONS = a.rotations
    torch.set_num_threads(1)
    os.environ.setdefault("NAPARI_QPI_THREADS", "1")  # what extract reads
    bank = class_bank(a.split, a.n, seed=a.seed)
    bright = recentre_bank(bank)
    maps = class_maps(bank, snr=a.snr, seed=a.seed).numpy().astype(float)
    methods = a.methods.split(",")
    by: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    diff: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, obs in enumerate(maps):
        defect = bank.families[i].split("/")[2]
        obs = -obs if a.negate else obs
        for m in methods:
            kernel = extract(obs, method=m, weights=a.weights, rng=i).kernel
            site = score(bank.windows[i].numpy(), kernel)
            s = {"site": site["tail_similarity"],
                 "bright": score(bright.windows[i].numpy(), kernel)["tail_similarity"],
                 "aligned": site["aligned_tail_similarity"]}
            for group in (defect, "all"):
                for name, v in s.items():
                    by[group][f"{m} ({name})"].append(v)
            if a.against:
                other = extract(obs, method=m, weights=a.against, rng=i).kernel
                d = s["site"] - score(bank.windows[i].numpy(), other)["tail_similarity"]
                for group in (defect, "all"):
                    diff[group][m].append(d)
    cols = [f"{m} ({c})" for m in methods for c in ("site", "bright", "aligned")]
    print(f"{a.split} classes, seed {a.seed}, SNR {a.snr:g}, `{a.weights}` weights"
          + (", maps negated" if a.negate else "") + "; median tail similarity against "
          "the truth centred on its first site / its brightest point, and the aligned "
          "tail similarity against the first-site truth:")
    print("| defect | n | " + " | ".join(cols) + " |\n|---|---|" + "---|" * len(cols))
    for d in sorted(by, key=lambda d: (d == "all", d)):
        print(f"| {d} | {len(by[d][cols[0]])} | "
              + " | ".join(f"{np.median(by[d][c]):.3f}" for c in cols) + " |")
    if a.against:
        print(f"\npaired per-map difference `{a.weights}` − `{a.against}` (first-site truth): "
              "median / mean / maps better by > 0.05 / worse by > 0.05")
        print("| defect | n | " + " | ".join(methods) + " |\n|---|---|" + "---|" * len(methods))
        for d in sorted(diff, key=lambda d: (d == "all", d)):
            print(f"| {d} | {len(diff[d][methods[0]])} | "
                  + " | ".join(paired(diff[d][m]) for m in methods) + " |")


def labelling(split: str, n: int, seed: int) -> None:
    """What a *perfect* kernel scores when it is centred on another point of its defect:
    the labelling cost that no estimator can avoid without knowing the simulator's site."""
    from napari_qpi.evaluation.classes import CLASS_EVAL_STREAM
    from napari_qpi.evaluation.metrics import aligned_tail_similarity, tail_similarity
    from napari_qpi.models.data import BANK_GRID, bright_offsets, shifted_spectra
    from napari_qpi.physics.classes import sample_classes
    from napari_qpi.physics.kernels import crop_centered

    specs = sample_classes(split, n, CLASS_EVAL_STREAM + seed)  # the specs of class_bank
    bank = class_bank(split, n, seed=seed)

    def centred_on(i: int, d) -> np.ndarray:  # K(r + d): the point d moved to the centre
        spec = shifted_spectra(bank.spectra[i:i + 1].to(torch.complex128), [d])
        grid = torch.fft.irfft2(spec, s=(BANK_GRID, BANK_GRID))[0]
        return crop_centered(grid.numpy(), bank.windows.shape[-1])

    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    blobs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    r = np.arange(bank.windows.shape[-1]) - bank.windows.shape[-1] // 2
    blob = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 4)  # a core with no tail
    for i, spec in enumerate(specs):
        sites = np.asarray(spec.sites, float)
        truth = bank.windows[i].numpy()
        blobs[spec.name.split("/")[2]].append((tail_similarity(truth, blob),
                                               aligned_tail_similarity(truth, blob)))
        if len(sites) < 2:
            continue
        where = {"another site": sites[1:], "brightest point": bright_offsets(truth[None]),
                 "sites' centre": sites.mean(0, keepdims=True)}
        for name, points in where.items():
            est = [centred_on(i, p) for p in points]
            got = {f"{name} (tail)": np.mean([tail_similarity(truth, e) for e in est]),
                   f"{name} (aligned)": np.mean([aligned_tail_similarity(truth, e)
                                                 for e in est])}
            for group in (spec.name.split("/")[2], "all multi-site"):
                for col, v in got.items():
                    rows[group][col].append(v)
    cols = list(next(iter(rows.values())))
    print(f"{split} classes, seed {seed}: the true kernel centred on another point of its "
          "defect, scored against itself centred on the first site; median over kernels "
          "(another site: mean over the other sites)")
    print("| defect | n | " + " | ".join(cols) + " |\n|---|---|" + "---|" * len(cols))
    for d in sorted(rows, key=lambda d: (d.startswith("all"), d)):
        print(f"| {d} | {len(rows[d][cols[0]])} | "
              + " | ".join(f"{np.median(rows[d][c]):.3f}" for c in cols) + " |")
    print("\nwhat the aligned score forgives too: a Gaussian blob at the centre (σ = √2 px), "
          "median tail / aligned tail similarity by defect: "
          + "; ".join(f"{d} {np.median([b[0] for b in v]):.3f} / "
                      f"{np.median([b[1] for b in v]):.3f}" for d, v in sorted(blobs.items())))


if __name__ == "__main__":
    main()
