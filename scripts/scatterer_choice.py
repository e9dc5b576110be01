"""How the scatterer map's significance rule was chosen (``fit.SIGNIFICANCE``).

On the project's own draws only — instrument draws (``make_instrument_cases``) and plain
white-noise maps of the simulator — never on a validation set. For each map: ``auto``'s
kernel and noise level, the ℓ1 fit without merging, its groups of adjacent active pixels
(each group's summed activation, its strongest pixel), and whether a group lies within 3
px of a true scatterer. Prints, per rule, found / true and the recall of true scatterers.

    python scripts/scatterer_choice.py --n 24 --plain 12
    python scripts/scatterer_choice.py --n 24 --plain 18 --split [--seed 2]

``--split``: how a group of adjacent active pixels is cut into scatterers
(``fit.SEPARATION``) — whole groups against peaks at least 3, 4 or 5 px apart with their
basins, at the adopted significance; found and true scatterers matched one to one within
3 px, so two true neighbours under one found peak count once.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage

from napari_qpi.evaluation.instrument import make_instrument_cases
from napari_qpi.extraction.extract import extract
from napari_qpi.extraction.fista import centre
from napari_qpi.extraction.fit import SIGNIFICANCE, fit_map, merge_scatterers
from napari_qpi.io.pipeline import preprocess
from napari_qpi.physics.sampling import EVAL_STREAM, SPLITS, sample_spec
from napari_qpi.physics.simulation import simulate

RATIOS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3)


def plain_cases(n: int):
    """(observation, positions) of white-noise maps at SNR 20 / 5 / 1."""
    rng = np.random.default_rng(EVAL_STREAM + 104729)
    fams = SPLITS["seen"] + SPLITS["unseen"]
    for i in range(n):
        spec = sample_spec(fams[i % len(fams)], rng)
        sim = simulate(band=spec.band, energies=[spec.energy], defects=[spec.defect],
                       shape=(128, 128), n_scatterers=int(rng.integers(8, 41)),
                       kernel_size=65, pixel_size=spec.pixel_size,
                       broadening=spec.broadening, tip_blur=spec.blur,
                       snr=(20.0, 5.0, 1.0)[i % 3], seed=int(rng.integers(2**31)))
        yield sim.observation[0], sim.positions


def unmerged(observation):
    """The ℓ1 activation of ``auto``'s kernel at its noise level, before merging."""
    res = extract(observation, method="auto")
    y, _ = preprocess(np.asarray(observation, float)[None], res.info["preprocess"])
    return fit_map(centre(y), np.asarray(res.kernel, float).reshape(1, *res.kernel.shape[-2:]),
                   noise=np.atleast_1d(res.info["noise_level"])).activation


def matched(found, true, radius: float = 3.0) -> int:
    """Found and true positions paired one to one within ``radius``, nearest first."""
    if len(found) == 0 or len(true) == 0:
        return 0
    d = np.sqrt(((np.asarray(found, float)[:, None] - np.asarray(true, float)[None]) ** 2)
                .sum(-1))
    used_f, used_t = set(), set()
    for i, j in sorted(zip(*np.nonzero(d <= radius)), key=lambda ij: d[ij]):
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    return len(used_f)


def split_table(data) -> None:
    """found / true, recall and precision per rule of cutting groups (``--split``)."""
    rules = {"whole groups": None, "peaks ≥ 3 px": 3, "peaks ≥ 4 px": 4, "peaks ≥ 5 px": 5}
    rows = {r: [] for r in rules}
    for obs, pos in data:
        x = unmerged(obs)
        for r, sep in rules.items():
            if sep is None:
                total, peak = whole_groups(x)
                keep = total >= SIGNIFICANCE * float(np.median(np.sort(total)[::-1][:3]))
                found = peak[keep]
            else:
                found = np.argwhere(merge_scatterers(x, separation=sep) > 0)
            m = matched(found, pos)
            rows[r].append((len(found) / len(pos), m / len(pos), m / max(len(found), 1)))
    table(("rule", "found / true (median)", "recall (mean, min)", "precision (mean, min)"),
          {r: (f"{np.median(v[:, 0]):.2f}", f"{v[:, 1].mean():.3f}, {v[:, 1].min():.2f}",
               f"{v[:, 2].mean():.3f}, {v[:, 2].min():.2f}")
           for r, v in ((r, np.array(v)) for r, v in rows.items())})


def table(head, rows: dict) -> None:
    """Print a markdown table: ``head`` names the columns, ``rows`` maps a row's first
    cell to its other cells."""
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for first, cells in rows.items():
        print(f"| {first} | " + " | ".join(cells) + " |")


def whole_groups(x):
    """Summed activation and strongest pixel of each group of adjacent active pixels."""
    labels, n = ndimage.label(x > 0, structure=np.ones((3, 3), bool))
    idx = np.arange(1, n + 1)
    total = ndimage.sum_labels(x, labels, idx)
    return total, np.array(ndimage.maximum_position(x, labels, idx)).reshape(-1, 2)


def groups(observation, positions):
    """Summed activation of each group of the unmerged fit, and whether it is real."""
    total, peak = whole_groups(unmerged(observation))
    peak = peak.astype(float)
    # the activation may sit a pixel or two off the true position (kernel centring)
    d = np.sqrt(((peak[:, None] - np.asarray(positions, float)[None]) ** 2).sum(-1))
    return total, d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=24, help="instrument draws")
    p.add_argument("--plain", type=int, default=12, help="white-noise draws")
    p.add_argument("--seed", type=int, default=0, help="of the instrument draws")
    p.add_argument("--split", action="store_true",
                   help="compare rules of cutting a group into scatterers instead")
    a = p.parse_args()
    data = [(c.observation, c.positions) for c in make_instrument_cases(a.n, seed=a.seed)]
    data += list(plain_cases(a.plain))
    if a.split:
        split_table(data)
        return
    rows = {r: [] for r in RATIOS}
    for obs, pos in data:
        total, d = groups(obs, pos)
        ref = float(np.median(np.sort(total)[::-1][:3])) if len(total) else 0.0
        for r in RATIOS:
            keep = total >= r * ref
            recall = float(np.mean(d[keep].min(0) <= 3)) if keep.any() else 0.0
            rows[r].append((keep.sum() / len(pos), recall))
    table(("ratio", "found / true (median, 90th pct)", "recall (median, 10th pct)"),
          {f"{r:.2f}": (f"{np.median(v[:, 0]):.2f}, {np.percentile(v[:, 0], 90):.2f}",
                        f"{np.median(v[:, 1]):.2f}, {np.percentile(v[:, 1], 10):.2f}")
           for r, v in ((r, np.array(v)) for r, v in rows.items())})


if __name__ == "__main__":
    main()
