"""How the number of defect species is scored: held-out block sizes and draws, on own draws.

For each map, the one-species pipeline of ``extract()`` is run up to the species step
(``species.separate`` is replaced to capture its inputs), N = 1, 2, 3 species are fitted
once, and the held-out residual of each N is computed for blocks of 8, 4, 2 and 1 px,
four draws each. One JSON line per map. The record: docs/notes/2026-12-06-species-count.md.

    python scripts/species_holdout.py alike|alike2|mixed|single|single_clean > out.jsonl
    python scripts/species_holdout.py --picks b8 4 5 out_*.jsonl   # N chosen per map

``shared`` and ``foreign`` measure the validation sets (measure only, never tune).
"""

import json
import sys
import time

import numpy as np

import napari_qpi.extraction.species as sp
from napari_qpi import extract
from napari_qpi.extraction.quality import holdout_mask

CAP = {}


def fake(y, kernel, noise, n_types, **kw):
    CAP.update(y=y, kernel=kernel, noise=noise, kw=kw)
    return None, {"n_types": 1, "types_cv": {1: np.nan}, "warnings": []}


sp.separate = fake


def _draws(n, stream, second_of, snr_of, size=128):
    """Two-species maps: the family's defect and ``second_of(i, spec, rng)``."""
    from napari_qpi.evaluation.species import MixedCase
    from napari_qpi.physics.sampling import EVAL_STREAM, SPLITS, sample_spec, simulate_spec

    rng = np.random.default_rng(EVAL_STREAM + stream)
    fams = SPLITS["seen"] + SPLITS["unseen"]
    out = []
    for i in range(n):
        fam = fams[i % len(fams)]
        spec = sample_spec(fam, rng)
        second, snr = second_of(i, spec, rng), snr_of(i)
        sim = simulate_spec(spec, defects=[spec.defect, second], shape=(size, size),
                            n_scatterers=int(rng.integers(20, 51)), kernel_size=65,
                            snr=snr, seed=int(rng.integers(2**31)))
        out.append(MixedCase(i, fam, snr, sim.observation[0], sim.kernels[:, 0],
                             sim.positions, sim.types))
    return out


def _ratio(rng):
    return float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))


def alike_cases(n, seed=0):
    """A second species of the same sign: a dimer along an axis or a diagonal."""
    from napari_qpi.physics.kernels import Defect

    def second(i, spec, rng):
        off = ((0.0, 0.0), (0.0, 1.0)) if i % 2 == 0 else ((0.0, 0.0), (1.0, 1.0))
        return Defect(spec.defect.strength * _ratio(rng), off, (1.0, 1.0))

    return _draws(n, 7919 + seed, second, lambda i: (20.0, 5.0)[(i // 2) % 2])


def alike2_cases(n, seed=0):
    """A dimer at a random angle of either sign, or the same defect 3–6× stronger."""
    from napari_qpi.physics.kernels import Defect

    def second(i, spec, rng):
        v = spec.defect.strength
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if i % 3 == 2:  # weak and strong point-like defects of one sign
            return Defect(v * float(rng.uniform(3, 6)), spec.defect.offsets,
                          spec.defect.weights)
        d, t = rng.uniform(0.7, 1.5), rng.uniform(0, np.pi)
        return Defect(sign * v * _ratio(rng),
                      ((0.0, 0.0), (float(d * np.sin(t)), float(d * np.cos(t)))), (1.0, 1.0))

    return _draws(n, 4421 + seed, second, lambda i: (20.0, 5.0)[(i // 3) % 2])


def scores(y, fits, noise, masks):
    """Mask name → N → held-out residual (species.heldout_scores, one mask at a time)."""
    return {name: {n: float("nan") if fit is None else
                   sp.heldout_scores(y, fit, noise, [train])[0] for n, fit in fits.items()}
            for name, train in masks.items()}


def blocks(y, fits, noise, draws=4, block=8):
    """N → per draw of ``block``-px held-out blocks: each block's squared held-out
    residual and squared observation (centred as species.heldout_scores), so two N can
    be compared block by block on the same blocks."""
    from scipy import ndimage

    from napari_qpi.extraction.fista import centre
    from napari_qpi.extraction.operator import TypesOperator
    from napari_qpi.extraction.species_steps import activations_given

    out = {}
    for n, fit in fits.items():
        if fit is None:
            continue
        op, per = TypesOperator(fit.kernels, y.shape[-2:]), []
        for r in range(draws):
            train = holdout_mask(y.shape[-2:], r, block=block)
            held = 1.0 - train
            pred = op.forward(activations_given(y, fit.kernels, noise, mask=train))
            labels, m = ndimage.label(held > 0)
            idx = np.arange(1, m + 1)
            num = (centre(y - pred, held) ** 2).sum(0)
            den = (centre(y, held) ** 2).sum(0)
            per.append([ndimage.sum_labels(num, labels, idx).tolist(),
                        ndimage.sum_labels(den, labels, idx).tolist()])
        out[n] = per
    return out


def run(obs, label):
    t = time.time()
    extract(obs, n_types=2)
    y, kernel, noise = CAP["y"], CAP["kernel"], CAP["noise"]
    fits = {}
    for n in (1, 2, 3):
        f = sp.fit_species(y, kernel, noise, n, rng=0)
        if f is not None:
            f = sp.reread(y, f, noise, rng=0)
        fits[n] = f
    masks = {}
    for b in (8, 4, 2, 1):
        for r in (0, 1, 2, 3):
            masks[f"b{b}r{r}"] = holdout_mask(y.shape[-2:], r, block=b)
    s = scores(y, fits, noise, masks)
    rec = {
        "label": label,
        "s": s,
        "sec": time.time() - t,
        "sep": sp.separation(fits[2].kernels) if fits[2] is not None else None,
        "blocks": blocks(y, fits, noise),
    }
    print(json.dumps(rec), flush=True)


def picks(block, draws, margin, files):
    """N chosen per map by the rule of species.choose_types (N = 1..3 here)."""
    for fn in files:
        chosen = []
        for line in open(fn):
            r = json.loads(line)
            cv = {
                n: np.mean([r["s"][f"{block}r{k}"][n] for k in range(draws)])
                for n in ("1", "2", "3")
            }
            n = 1
            if cv["2"] < (1 - margin) * cv["1"]:
                n = 2 if not cv["3"] < (1 - margin) * cv["2"] else 3
            chosen.append(n)
        print(fn, "N=1/2/3:", np.bincount(chosen, minlength=4)[1:].tolist())


if __name__ == "__main__":
    which = sys.argv[1]
    if which == "--picks":
        picks(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) / 100, sys.argv[5:])
        sys.exit()
    if which == "mixed":
        from napari_qpi.evaluation.species import make_mixed_cases

        for c in make_mixed_cases(12):
            run(c.observation, f"mixed{c.index}-{c.family}-{c.snr}")
    elif which == "alike":
        for c in alike_cases(12):
            run(c.observation, f"alike{c.index}-{c.family}-{c.snr}")
    elif which == "alike2":
        for c in alike2_cases(12):
            run(c.observation, f"alike2{c.index}-{c.family}-{c.snr}")
    elif which == "single":
        from napari_qpi.evaluation.instrument import make_instrument_cases

        for c in make_instrument_cases(12, seed=0):
            run(c.observation, f"single{c.index}-{'+'.join(c.artefacts)}")
    elif which == "single_clean":
        from napari_qpi.physics.sampling import EVAL_STREAM, SPLITS, sample_spec, simulate_spec

        rng = np.random.default_rng(EVAL_STREAM + 31337)
        fams = SPLITS["seen"] + SPLITS["unseen"]
        for i in range(12):
            spec = sample_spec(fams[i % len(fams)], rng)
            sim = simulate_spec(
                spec,
                shape=(128, 128),
                n_scatterers=int(rng.integers(20, 51)),
                kernel_size=65,
                snr=(20.0, 5.0)[i % 2],
                seed=int(rng.integers(2**31)),
            )
            run(sim.observation[0], f"clean{i}-{fams[i % len(fams)]}")
    elif which == "shared":
        d = np.load("../shared/data/instrument/mixed.npz")
        for i in range(12):
            run(d[f"{i:02d}_observation"], f"shared{i}")
    elif which == "foreign":
        from napari_qpi.evaluation.foreign import load_foreign

        cs = [c for c in load_foreign("../shared/data/foreign", limit=12) if c.set == "maps"]
        for c in cs:
            run(c.observation, f"foreign{c.index}-{c.defect}-{c.snr}")
