"""How many quarter-turn views does the latent fit need on an energy stack?

On one map, the best of four views' latent fits (by held-out residual) beat one view
(docs/extraction.md). On a stack the views run one after another once the stack is long
(``latent.BATCH_KERNELS``), so each view costs a full fit. Own draws only: instrument
stacks (``make_instrument_stacks``) of several lengths; each runs ``auto`` with each view
set; prints paired tail similarities and times.

    python scripts/stack_views.py --energies 8 24 --stacks 6 --views 0123 01 0
    python scripts/stack_views.py --energies 24 48 --views 0123/all 0123 0

A view set ``V/N`` chooses the view on N energies of a longer stack
(``AutoConfig.view_energies``; ``V/all``: on every energy); plain ``V`` the default.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from napari_qpi import AutoConfig, extract
from napari_qpi.evaluation import score
from napari_qpi.evaluation.instrument import make_instrument_stacks


def config_of(spec: str) -> AutoConfig:
    """``"0123"``, ``"0123/8"`` or ``"0123/all"``: views, and the energies they are
    chosen on."""
    views, _, on = spec.partition("/")
    kw = {} if not on else {"view_energies": None if on == "all" else int(on)}
    return AutoConfig(stack_views=tuple(int(c) for c in views), **kw)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--energies", type=int, nargs="+", default=[8, 24])
    p.add_argument("--stacks", type=int, default=6)
    p.add_argument("--views", nargs="+", default=["0123", "0"])
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    # a stack's views are AutoConfig.stack_views (views are a single map's)
    configs = {v: config_of(v) for v in a.views}
    rows = []
    for n_e in a.energies:
        for c in make_instrument_stacks(a.stacks, seed=a.seed, n_energies=n_e):
            row = {"energies": n_e, "index": int(c.index)}
            for name, cfg in configs.items():
                t = time.perf_counter()
                res = extract(c.observation, config=cfg, rng=0)
                row[name] = {"tail": float(score(c.kernel, res.kernel)["tail_similarity"]),
                             "seconds": time.perf_counter() - t,
                             "pick": res.info["auto_pick"]}
            rows.append(row)
            print(n_e, c.index, {k: v for k, v in row.items() if k in configs}, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f)
    ref = a.views[0]
    print(f"\n| energies | n | views | median tail | median paired Δ vs {ref} | worst Δ | "
          "same pick | median s |\n|---|---|---|---|---|---|---|---|")
    for n_e in a.energies:
        rs = [r for r in rows if r["energies"] == n_e]
        t0 = np.array([r[ref]["tail"] for r in rs])
        for v in a.views:
            t1 = np.array([r[v]["tail"] for r in rs])
            same = sum(r[v]["pick"] == r[ref]["pick"] for r in rs)
            s = np.median([r[v]["seconds"] for r in rs])
            print(f"| {n_e} | {len(rs)} | {v} | {np.median(t1):.3f} | "
                  f"{np.median(t1 - t0):+.4f} | {np.min(t1 - t0):+.3f} | {same}/{len(rs)} | "
                  f"{s:.1f} |")


if __name__ == "__main__":
    main()
