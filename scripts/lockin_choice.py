"""The lock-in step (extraction/lockin.py) on the project's own draws: `auto`'s tail
similarity per case, with the pole read and the shift made.

Run it on two checkouts (the code before a change and after) with ``--json`` and pair
the files with ``--pair``; own draws only, never a validation set.

    python scripts/lockin_choice.py --json after.json    # every set below
    python scripts/lockin_choice.py --pair before.json after.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

SETS = {
    "stacks31": ("make_instrument_stacks", 12, 31),
    "stacks33": ("make_instrument_stacks", 12, 33),
    "maps43": ("make_instrument_cases", 24, 43),
    "cstacks31": ("make_class_instrument_stacks", 8, 31),
    "cmaps1": ("make_class_instrument_cases", 24, 1),
}


def run(names: list[str]) -> list[dict]:
    from napari_qpi import extract
    from napari_qpi.evaluation import instrument, score

    out = []
    for name in names:
        maker, n, seed = SETS[name]
        for c in getattr(instrument, maker)(n, seed=seed):
            t = time.perf_counter()
            r = extract(c.observation, method="auto")
            rec = {"set": name, "index": int(c.index), "artefacts": list(c.artefacts),
                   "tail": float(score(c.kernel, r.kernel)["tail_similarity"]),
                   "pole": r.info.get("lockin_pole"), "delay": r.info.get("lockin_delay"),
                   "seconds": time.perf_counter() - t}
            out.append(rec)
            print(json.dumps(rec), flush=True)
    return out


def pair(before: list[dict], after: list[dict]) -> None:
    a = {(r["set"], r["index"]): r["tail"] for r in before}
    b = {(r["set"], r["index"]): r["tail"] for r in after}
    print("| draws | n | median before → after | up / down (> 0.001) | worst |\n"
          "|---|---|---|---|---|")
    for name in dict.fromkeys(k[0] for k in b):
        keys = [k for k in b if k[0] == name and k in a]
        t0, t1 = np.array([a[k] for k in keys]), np.array([b[k] for k in keys])
        d = t1 - t0
        print(f"| {name} | {len(keys)} | {np.median(t0):.3f} → {np.median(t1):.3f} | "
              f"{int((d > 0.001).sum())} / {int((d < -0.001).sum())} | {d.min():+.3f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--json", default=None, help="write the records here")
    p.add_argument("--pair", nargs=2, metavar=("BEFORE", "AFTER"), default=None,
                   help="pair two record files instead of running")
    a = p.parse_args()
    if a.pair:
        with open(a.pair[0]) as f0, open(a.pair[1]) as f1:
            pair(json.load(f0), json.load(f1))
        return
    records = run(a.sets)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(records, f)


if __name__ == "__main__":
    main()
