"""Every method on the project's own maps seen through a simulated instrument.

The draws on which instrument rules (preprocessing, the held-out noise level, the density
cap) are chosen — the shared instrument set only measures them. Prints the same table as
``napari-qpi benchmark --instrument``.

    python scripts/instrument_draws.py --n 24 --methods two-stage,auto [--json FILE]
    python scripts/instrument_draws.py --stacks 12 --methods auto
    python scripts/instrument_draws.py --classes --n 24 --methods auto

``--stacks N``: N eight-energy stacks (``make_instrument_stacks``) instead of maps.
``--classes``: maps of the named physics classes (``make_class_instrument_cases``:
rotated lattices, multi-site defects; harder than the default draws).
"""

from __future__ import annotations

import argparse
import json

from napari_qpi.evaluation.foreign import iter_cases
from napari_qpi.evaluation.instrument import (
    instrument_table,
    make_class_instrument_cases,
    make_instrument_cases,
    make_instrument_stacks,
)
from napari_qpi.progress import drain


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=24, help="maps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default="two-stage")
    p.add_argument("--stacks", type=int, default=0, help="this many stacks instead")
    p.add_argument("--classes", action="store_true",
                   help="maps of the named physics classes (harder draws)")
    p.add_argument("--json", default=None, help="also write the records here")
    a = p.parse_args()
    if a.stacks:
        cases = make_instrument_stacks(a.stacks, seed=a.seed)
    elif a.classes:
        cases = make_class_instrument_cases(a.n, seed=a.seed)
    else:
        cases = make_instrument_cases(a.n, seed=a.seed)
    records = drain(iter_cases(a.methods.split(","), cases))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(records, f, default=lambda o: list(o) if isinstance(o, tuple)
                      else float(o))
    print(instrument_table(records))


if __name__ == "__main__":
    main()
