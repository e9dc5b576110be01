"""Several defect species (extraction/species.py) on the project's own mixed draws.

The draws on which the species rules (the candidates, the grouping, the margin of
``n_types="auto"``) are chosen; ``napari-qpi benchmark --mixed`` measures them on the
shared mixed set. Also checks that one-species draws stay at one with ``"auto"``.

    python scripts/species_choice.py --n 12 [--seed 0] [--n-types auto] [--single 6]
    python scripts/species_choice.py --n 12 --same-sign   # like-signed species (harder)
    python scripts/species_choice.py --foreign ../shared/data/foreign --limit 12

``--foreign`` measures only how often ``n_types="auto"`` keeps one species on a set of
one-species maps (its maps, ``--limit`` of them spread over defect kinds and SNRs).
"""

from __future__ import annotations

import argparse

from napari_qpi.evaluation.species import make_mixed_cases, mixed_table, run_mixed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=12, help="two-species draws")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-types", default="auto")
    p.add_argument("--same-sign", action="store_true",
                   help="the second species a like-signed dimer (make_mixed_cases)")
    p.add_argument("--single", type=int, default=0,
                   help="also this many one-species instrument draws with n_types='auto'")
    p.add_argument("--foreign", default=None, help="a one-species set's folder instead")
    p.add_argument("--limit", type=int, default=None)
    a = p.parse_args()
    if a.foreign:
        from napari_qpi import extract
        from napari_qpi.evaluation.foreign import load_foreign

        cases = [c for c in load_foreign(a.foreign, limit=a.limit) if c.set == "maps"]
        picks = []
        for c in cases:
            r = extract(c.observation, n_types="auto")
            picks.append(r.info["n_types"])
            print(c.index, c.defect, c.snr, r.info["n_types"], r.info["types_cv"],
                  flush=True)
        print(f"one-species maps: 1 chosen on {picks.count(1)}/{len(picks)}")
        return
    n_types = a.n_types if a.n_types == "auto" else int(a.n_types)
    records = run_mixed(make_mixed_cases(a.n, seed=a.seed, same_sign=a.same_sign),
                        n_types,
                        on_case=lambda r: print(r, flush=True))
    print(mixed_table(records))
    if a.single:
        from napari_qpi import extract
        from napari_qpi.evaluation.instrument import make_instrument_cases

        picks = []
        for c in make_instrument_cases(a.single, seed=a.seed):
            r = extract(c.observation, n_types="auto")
            picks.append(r.info["n_types"])
            print(c.index, c.artefacts, r.info["n_types"], r.info["types_cv"], flush=True)
        print(f"one-species draws: 1 chosen on {picks.count(1)}/{len(picks)}")


if __name__ == "__main__":
    main()
