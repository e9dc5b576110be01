"""How the scatterer map's significance rule was chosen (``fit.SIGNIFICANCE``).

On the project's own draws only — instrument draws (``make_instrument_cases``) and plain
white-noise maps of the simulator — never on a validation set. For each map: ``auto``'s
kernel and noise level, the ℓ1 fit without merging, its groups of adjacent active pixels
(each group's summed activation, its strongest pixel), and whether a group lies within 3
px of a true scatterer. Prints, per rule, found / true and the recall of true scatterers.

    python scripts/scatterer_choice.py --n 24 --plain 12
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage

from napari_qpi.evaluation.instrument import make_instrument_cases
from napari_qpi.extraction.extract import extract
from napari_qpi.extraction.fista import centre
from napari_qpi.extraction.fit import fit_map
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


def groups(observation, positions):
    """Summed activation of each group of the unmerged fit, and whether it is real."""
    res = extract(observation, method="auto")
    y, _ = preprocess(np.asarray(observation, float)[None], res.info["preprocess"])
    fit = fit_map(centre(y), np.asarray(res.kernel, float).reshape(1, *res.kernel.shape[-2:]),
                  noise=np.atleast_1d(res.info["noise_level"]))
    x = fit.activation
    labels, n = ndimage.label(x > 0, structure=np.ones((3, 3), bool))
    idx = np.arange(1, n + 1)
    total = ndimage.sum_labels(x, labels, idx)
    peak = np.array(ndimage.maximum_position(x, labels, idx), float).reshape(-1, 2)
    # the activation may sit a pixel or two off the true position (kernel centring)
    d = np.sqrt(((peak[:, None] - np.asarray(positions, float)[None]) ** 2).sum(-1))
    return total, d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=24, help="instrument draws")
    p.add_argument("--plain", type=int, default=12, help="white-noise draws")
    a = p.parse_args()
    data = [(c.observation, c.positions) for c in make_instrument_cases(a.n)]
    data += list(plain_cases(a.plain))
    rows = {r: [] for r in RATIOS}
    for obs, pos in data:
        total, d = groups(obs, pos)
        ref = float(np.median(np.sort(total)[::-1][:3])) if len(total) else 0.0
        for r in RATIOS:
            keep = total >= r * ref
            recall = float(np.mean(d[keep].min(0) <= 3)) if keep.any() else 0.0
            rows[r].append((keep.sum() / len(pos), recall))
    print("| ratio | found / true (median, 90th pct) | recall (median, 10th pct) |")
    print("|---|---|---|")
    for r, v in rows.items():
        v = np.array(v)
        print(f"| {r:.2f} | {np.median(v[:, 0]):.2f}, {np.percentile(v[:, 0], 90):.2f} | "
              f"{np.median(v[:, 1]):.2f}, {np.percentile(v[:, 1], 10):.2f} |")


if __name__ == "__main__":
    main()
