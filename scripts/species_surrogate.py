"""A lead for ``n_types="auto"``: the gain of a second species against a surrogate null.

For each own-draw map, the one-species pipeline of ``extract()`` runs up to the species
step (inputs captured as in ``species_holdout.py``); one and two species are fitted by
least squares (``species.fit_species``, no learned re-reading); the gain is the ratio of
their relative residuals. The null: the same two fits on surrogates — the one-species
model plus its own residual circularly shifted (keeping the residual's correlation,
breaking its tie to the scatterers) — two shifts per map. One JSON line per map:
``g`` and the two null gains. The record: docs/notes/2026-12-07-decoder-upsampling.md.

    python scripts/species_surrogate.py mixed|alike2|single|clean N > out.jsonl
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import species_holdout as sh  # noqa: E402  (replaces species.separate to capture its inputs)

import napari_qpi.extraction.species as sp  # noqa: E402
from napari_qpi import extract  # noqa: E402
from napari_qpi.extraction.fista import centre  # noqa: E402

SHIFTS = ((37, 53), (71, 19))


def gains(y, kernel, noise):
    f1 = sp.fit_species(y, kernel, noise, 1, rng=0)
    f2 = sp.fit_species(y, kernel, noise, 2, rng=0)
    return f1, (np.nan if f2 is None else f2.relative_residual / f1.relative_residual)


def run(obs, label):
    t = time.time()
    extract(obs, n_types=2)
    y, kernel, noise = sh.CAP["y"], sh.CAP["kernel"], sh.CAP["noise"]
    f1, g = gains(y, kernel, noise)
    model = y - f1.residual
    null = [gains(centre(model + np.roll(f1.residual, s, (-2, -1))), kernel, noise)[1]
            for s in SHIFTS]
    # the package's rule today (held-out blocks, learned re-reading), for N = 1, 2
    n_now, cv, _ = sp.choose_types(y, kernel, noise, max_types=2)
    print(json.dumps({"label": label, "g": g, "null": null, "n_now": int(n_now),
                      "cv": {str(k): float(v) for k, v in cv.items()},
                      "sec": round(time.time() - t, 1)}), flush=True)


if __name__ == "__main__":
    which, n = sys.argv[1], int(sys.argv[2])
    if which == "mixed":
        from napari_qpi.evaluation.species import make_mixed_cases

        for c in make_mixed_cases(n):
            run(c.observation, f"mixed{c.index}")
    elif which == "alike2":
        for c in sh.alike2_cases(n):
            run(c.observation, f"alike2{c.index}")
    elif which == "single":
        from napari_qpi.evaluation.instrument import make_instrument_cases

        for c in make_instrument_cases(n, seed=0):
            run(c.observation, f"single{c.index}")
    elif which == "clean":  # one species, white noise (species_holdout.py's draws)
        from napari_qpi.physics.sampling import EVAL_STREAM, SPLITS, sample_spec, simulate_spec

        rng = np.random.default_rng(EVAL_STREAM + 31337)
        fams = SPLITS["seen"] + SPLITS["unseen"]
        for i in range(n):
            spec = sample_spec(fams[i % len(fams)], rng)
            sim = simulate_spec(spec, shape=(128, 128), n_scatterers=int(rng.integers(20, 51)),
                                kernel_size=65, snr=(20.0, 5.0)[i % 2],
                                seed=int(rng.integers(2**31)))
            run(sim.observation[0], f"clean{i}")
