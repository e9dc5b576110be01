"""Does a speed setting of `AutoConfig` (views stopped early, fewer latent-fit steps)
change `auto`'s kernels?

Own draws only (the shared sets only measure): held-out physics-class maps in white noise
(``class_bank``/``class_maps``), instrument maps and eight-energy instrument stacks
(``make_instrument_cases``/``make_instrument_stacks``), and eight-energy stacks of the
physics classes (``make_class_instrument_stacks``). Each case runs ``auto`` with the
defaults and with the variant; prints the paired tail similarities and times.

    python scripts/view_pruning.py --classes 12 --maps 12 --stacks 4 --prune 2:2,4:1
    python scripts/view_pruning.py --config latent_iterations=4,15,20 --class-stacks 6
    python scripts/view_pruning.py --config view_blend=0 --shared foreign   # measure only

``--shared foreign|instrument`` runs the validation set's cases instead (measure only,
never choose a setting on them).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from napari_qpi import AutoConfig, extract
from napari_qpi.evaluation import score
from napari_qpi.evaluation.classes import class_bank, class_maps
from napari_qpi.evaluation.instrument import (
    make_class_instrument_stacks,
    make_instrument_cases,
    make_instrument_stacks,
)


def cases(n_classes: int, n_maps: int, n_stacks: int, seed: int, n_class_stacks: int = 0):
    if n_classes:
        bank = class_bank("held_out", n_classes, seed=seed)
        maps = class_maps(bank, seed=seed).double().numpy()
        kernels = bank.windows.double().numpy()
        for i in range(n_classes):
            yield "classes", i, maps[i][None], kernels[i][None]
    for c in make_instrument_cases(n_maps, seed=seed) if n_maps else []:
        yield "instrument maps", c.index, c.observation, c.kernel
    for c in make_instrument_stacks(n_stacks, seed=seed) if n_stacks else []:
        yield "instrument stacks", c.index, c.observation, c.kernel
    for c in make_class_instrument_stacks(n_class_stacks, seed=seed) if n_class_stacks else []:
        yield "class stacks", c.index, c.observation, c.kernel


def variant(specs: list[str], prune: str) -> AutoConfig:
    """``AutoConfig`` of ``name=v1,v2,...`` settings (``--config``), else of ``--prune``."""
    if not specs:
        return AutoConfig(view_pruning=tuple(tuple(int(v) for v in s.split(":"))
                                             for s in prune.split(",")))
    kw = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        parts = value.split(",")
        kw[name] = float(parts[0]) if len(parts) == 1 else tuple(int(v) for v in parts)
    return AutoConfig(**kw)


def shared_cases(name: str):
    """Every case of the shared validation set ``name`` (measure only)."""
    from napari_qpi.evaluation.foreign import default_directory, load_foreign

    for c in load_foreign(default_directory(name)):
        yield f"{name} {c.set}", c.index, c.observation, c.kernel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=12)
    p.add_argument("--maps", type=int, default=12)
    p.add_argument("--stacks", type=int, default=4)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--class-stacks", type=int, default=0)
    p.add_argument("--prune", default="2:2,4:1", help="alternation:views kept, ...")
    p.add_argument("--shared", choices=("foreign", "instrument"), default=None,
                   help="the validation set's cases instead of own draws (measure only)")
    p.add_argument("--config", action="append", default=[],
                   help="a setting of the variant instead of --prune, e.g. "
                        "latent_iterations=4,15,20 (repeatable)")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    configs = {"default": AutoConfig(), "variant": variant(a.config, a.prune)}
    rows = []
    draws = (shared_cases(a.shared) if a.shared else
             cases(a.classes, a.maps, a.stacks, a.seed, a.class_stacks))
    for group, i, obs, kernel in draws:
        row = {"group": group, "index": int(i)}
        for name, cfg in configs.items():
            t = time.perf_counter()
            res = extract(obs, config=cfg, rng=0)
            row[name] = {"tail": float(score(kernel, res.kernel)["tail_similarity"]),
                         "seconds": time.perf_counter() - t, "pick": res.info["auto_pick"]}
        rows.append(row)
        print(group, i, {k: v for k, v in row.items() if k in configs}, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f)
    print(f"\nvariant: {configs['variant']}")
    print("\n| draws | n | default | variant | median paired Δ | worst Δ | same pick | "
          "s default → variant |\n|---|---|---|---|---|---|---|---|")
    for group in dict.fromkeys(r["group"] for r in rows):
        rs = [r for r in rows if r["group"] == group]
        t0 = np.array([r["default"]["tail"] for r in rs])
        t1 = np.array([r["variant"]["tail"] for r in rs])
        s0 = np.median([r["default"]["seconds"] for r in rs])
        s1 = np.median([r["variant"]["seconds"] for r in rs])
        same = sum(r["default"]["pick"] == r["variant"]["pick"] for r in rs)
        print(f"| {group} | {len(rs)} | {np.median(t0):.3f} | {np.median(t1):.3f} | "
              f"{np.median(t1 - t0):+.4f} | {np.min(t1 - t0):+.3f} | {same}/{len(rs)} | "
              f"{s0:.1f} → {s1:.1f} |")


if __name__ == "__main__":
    main()
