"""Sub-pixel centring of the kernel (extraction/subpixel.py) on the project's own draws.

For each own instrument draw (``make_instrument_cases``: half the oversampled maps put the
scatterers between pixels) ``extract`` runs once; the kernel before and after the
sub-pixel step are both scored against the truth, with what the step read and decided.
The shared instrument and foreign sets only measure the rule chosen here.

    python scripts/subpixel_choice.py --n 24 [--seed 0] [--foreign DIR]
"""

from __future__ import annotations

import argparse

import numpy as np

import napari_qpi.extraction.subpixel as sp
from napari_qpi import extract
from napari_qpi.evaluation.metrics import tail_similarity


def pad(k: np.ndarray, n: int) -> np.ndarray:
    p = (n - k.shape[-1]) // 2
    return np.pad(k, [(0, 0)] * (k.ndim - 2) + [(p, p), (p, p)]) if p > 0 else k


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--foreign", default=None, help="measure on this set instead")
    p.add_argument("--z", type=float, default=sp.Z,
                   help="gain needed, in SEs (-inf: always keep the best shift)")
    p.add_argument("--set", default="maps", choices=("maps", "stacks"),
                   help="with --foreign: which file")
    a = p.parse_args()
    if a.foreign:
        from napari_qpi.evaluation.foreign import load_foreign

        cases = [c for c in load_foreign(a.foreign) if c.set == a.set]
    else:
        from napari_qpi.evaluation.instrument import make_instrument_cases

        cases = make_instrument_cases(a.n, seed=a.seed)
    seen = {}
    real = sp.iter_centre_subpixel

    def spy(y, fit, cv, **kw):
        seen["before"] = fit.kernel
        return (yield from real(y, fit, cv, **kw, z=a.z))

    sp.iter_centre_subpixel = spy
    rows = []
    for c in cases:
        seen.clear()
        r = extract(c.observation)
        k = c.kernel.shape[-1]
        before = np.asarray(seen.get("before", r.kernel)).reshape(r.kernel.shape)
        before = pad(before, k)
        after = pad(r.kernel, k)
        tb = float(np.median(tail_similarity(c.kernel, before)))
        ta = float(np.median(tail_similarity(c.kernel, after)))
        cvs = r.info.get("subpixel_cv") or {}
        rows.append((tb, ta))
        print(f"{c.index:2d} {c.defect:7s} {','.join(c.artefacts):45s} before {tb:.3f} "
              f"after {ta:.3f} kept {r.info.get('subpixel_offset')} cv "
              + " ".join(f"{k}:{v:.3f}" for k, v in cvs.items()) + " gain(SE) "
              + " ".join(f"{k}:{v:.2f}" for k, v in
                         (r.info.get("subpixel_gain") or {}).items()), flush=True)
    b, t = np.array(rows).T
    print(f"median before {np.median(b):.3f} after {np.median(t):.3f}; "
          f"mean Δ {np.mean(t - b):+.3f}, worst Δ {np.min(t - b):+.3f}")


if __name__ == "__main__":
    main()
