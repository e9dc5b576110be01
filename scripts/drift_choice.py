"""Should automatic preprocessing correct drift? The same maps with and without it.

On the project's own instrument draws (``make_instrument_cases``; the shared instrument
set with ``--shared``, for measuring only), every map where the automatic steps find Bragg
peaks is extracted with ``two-stage`` twice: with the automatic steps minus drift
correction, and with Lawler–Fujita drift correction before the Bragg notch. Prints each
map's tail similarity and scatterers found per true scatterer, then the medians (NaN where
the lattice gave only one direction and drift correction refused).

    python scripts/drift_choice.py --n 40
"""

from __future__ import annotations

import argparse

import numpy as np

from napari_qpi import extract
from napari_qpi.evaluation.score import score
from napari_qpi.io.pipeline import auto_steps


def cases(args):
    """(index, observation, kernel, positions, artefacts) of each map."""
    if args.shared:
        from napari_qpi.evaluation.foreign import default_directory, load_foreign

        found = [c for c in load_foreign(default_directory("instrument")) if c.set == "maps"]
    else:
        from napari_qpi.evaluation.instrument import make_instrument_cases

        found = make_instrument_cases(args.n)
    return [(c.index, c.observation, c.kernel, c.positions, c.artefacts) for c in found]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="own draws")
    p.add_argument("--shared", action="store_true", help="the shared instrument set")
    args = p.parse_args()
    rows = []
    for i, obs, kernel, pos, arts in cases(args):
        steps = [s for s in auto_steps(obs) if s["step"] != "drift"]
        if "bragg" not in [s["step"] for s in steps]:
            continue
        with_drift = [s for s in steps if s["step"] != "bragg"] + [{"step": "drift"},
                                                                    {"step": "bragg"}]
        row = [i]
        for pre in (steps, with_drift):
            try:
                r = extract(obs, method="two-stage", preprocess=pre)
                row += [score(kernel, r.kernel)["tail_similarity"],
                        r.info["scatterers_found"] / len(pos)]
            except ValueError:  # one lattice direction: no drift correction
                row += [np.nan, np.nan]
        print(np.round(row, 3).tolist(), arts, flush=True)
        rows.append(row)
    m = np.nanmedian(np.array(rows, float)[:, 1:], axis=0)
    print(f"median tail: without drift correction {m[0]:.3f}, with {m[2]:.3f}; "
          f"found / true: without {m[1]:.1f}, with {m[3]:.1f}")


if __name__ == "__main__":
    main()
