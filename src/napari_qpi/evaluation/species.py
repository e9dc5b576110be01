"""Maps of several defect species: the shared mixed set, own draws, and their scores.

``napari-qpi benchmark --mixed`` runs ``extract(..., n_types=...)`` blind on
``../shared/data/instrument/mixed.npz`` (12 maps of two species of one band; its README)
and scores, per map:

- each true kernel against its best-matching extracted kernel (tail similarity), for
  both species, beside the single-kernel fit's best similarity to each;
- the scatterers assigned to the right species: each true scatterer matched to the
  nearest scatterer found within :data:`MATCH_RADIUS` px, the extracted species matched
  one-to-one to the true ones by kernel similarity;
- the number of species chosen (with ``n_types="auto"``).

:func:`make_mixed_cases` draws maps of the same kind from the project's own simulator
(the evaluation stream): the rules of :mod:`napari_qpi.extraction.species` are chosen on
those, the shared set only measures them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import tail_similarity

__all__ = ["MixedCase", "load_mixed", "make_mixed_cases", "mixed_table", "run_mixed",
           "score_species"]

#: A true scatterer counts as found when a found one lies this close (px, square):
#: a multi-site defect's scatterer may sit on any of its sites.
MATCH_RADIUS = 4


@dataclass(frozen=True)
class MixedCase:
    """One map of several species."""

    index: int
    family: str
    snr: float
    observation: np.ndarray  # (H, W)
    kernels: np.ndarray  # (T, k, k)
    positions: np.ndarray  # (N, 2)
    types: np.ndarray  # (N,) species of each scatterer


def load_mixed(path=None) -> list[MixedCase]:
    """The cases of ``mixed.npz`` (default ``../shared/data/instrument/mixed.npz``)."""
    if path is None:
        from .foreign import default_directory

        d = default_directory("instrument")
        path = None if d is None else d / "mixed.npz"
    if path is None:
        raise ValueError("no mixed.npz found at ../shared/data/instrument; pass its path")
    if not Path(path).is_file():
        raise ValueError(f"no file {path}: pass the path of mixed.npz")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta_json"]).decode())
        return [MixedCase(int(m["index"]), str(m["family"]), float(m["snr"]),
                          z[f"{int(m['index']):02d}_observation"],
                          z[f"{int(m['index']):02d}_kernel"],
                          z[f"{int(m['index']):02d}_positions"],
                          z[f"{int(m['index']):02d}_types"]) for m in meta]


def make_mixed_cases(n: int = 12, *, seed: int = 0, size: int = 128,
                     same_sign: bool = False) -> list[MixedCase]:
    """``n`` maps of two species of one band from the project's own simulator (kernels
    from the evaluation stream, never drawn in training): the family's defect at two
    potentials of opposite sign, or beside a dimer of the other sign; 20–50 scatterers,
    SNR 20 or 5.

    ``same_sign``: the second species is a dimer (along a lattice vector or the
    diagonal) scattering with the sign of the first, so the two patterns are alike, not
    opposite — the harder kind: a one-species fit cannot absorb an opposite-sign species
    (its scatterer map is non-negative), but it nearly absorbs a like-signed one."""
    from ..physics.kernels import Defect, default_defect
    from ..physics.sampling import EVAL_STREAM, SPLITS, sample_spec, simulate_spec

    rng = np.random.default_rng(EVAL_STREAM + 104729 + seed)
    fams = SPLITS["seen"] + SPLITS["unseen"]
    cases = []
    for i in range(int(n)):
        fam = fams[i % len(fams)]
        spec = sample_spec(fam, rng)
        v = spec.defect.strength
        other = (1.0 if same_sign else -1.0) * v * float(
            np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        if same_sign:  # a like-signed point would differ in strength only: a dimer,
            # along a lattice vector or the diagonal
            second = Defect(other, ((0.0, 0.0), (0.0, 1.0) if i % 2 else (1.0, 1.0)),
                            (1.0, 1.0))
        else:
            second = (default_defect(spec.band, other) if i % 2 == 0
                      else Defect(other, ((0.0, 0.0), (0.0, 1.0)), (1.0, 1.0)))
        sim = simulate_spec(spec, defects=[spec.defect, second], shape=(size, size),
                            n_scatterers=int(rng.integers(20, 51)), kernel_size=65,
                            snr=(20.0, 5.0)[i % 2], seed=int(rng.integers(2**31)))
        cases.append(MixedCase(i, fam, (20.0, 5.0)[i % 2], sim.observation[0],
                               sim.kernels[:, 0], sim.positions, sim.types))
    return cases


def score_species(case: MixedCase, kernels: np.ndarray, activations: np.ndarray) -> dict:
    """Kernels (N, k, k) and scatterer maps (N, H, W) of a fit against the truth."""
    from scipy.optimize import linear_sum_assignment

    k = case.kernels.shape[-1]
    est = np.asarray(kernels, float).reshape(-1, *np.shape(kernels)[-2:])
    pad = (k - est.shape[-1]) // 2
    if pad > 0:
        est = np.pad(est, ((0, 0), (pad, pad), (pad, pad)))
    sim = np.array([[tail_similarity(t, e) for e in est] for t in case.kernels])
    rows, cols = linear_sum_assignment(-sim)
    label_of = {int(c): int(r) for r, c in zip(rows, cols)}
    acts = np.asarray(activations).reshape(-1, *np.shape(activations)[-2:])
    found = [(p, t) for t in range(len(acts)) for p in np.argwhere(acts[t] > 0)]
    right = matched = 0
    for p, true_type in zip(case.positions, case.types):
        d = [np.abs(q - p).max() for q, _ in found]
        if d and min(d) <= MATCH_RADIUS:
            matched += 1
            right += label_of.get(found[int(np.argmin(d))][1], -1) == int(true_type)
    return {"tail_per_species": sim.max(1).tolist(), "found": matched / len(case.types),
            "assigned": right / max(matched, 1), "n_types": len(est)}


def run_mixed(cases: list[MixedCase], n_types=2, *, on_case=None) -> list[dict]:
    """``extract`` blind with ``n_types`` and with one species on each case; records."""
    from ..extraction.extract import extract

    records = []
    for case in cases:
        t0 = time.perf_counter()
        one = extract(case.observation)
        t1 = time.perf_counter()
        res = extract(case.observation, n_types=n_types)
        t2 = time.perf_counter()
        rec = {"index": case.index, "family": case.family, "snr": case.snr,
               **score_species(case, res.kernel if res.kernel.ndim == 3 else res.kernel[None],
                               res.activation),
               "single_tail_per_species": score_species(case, one.kernel[None],
                                                        one.activation[None])[
                   "tail_per_species"],
               "types_cv": res.info.get("types_cv"), "seconds_one": t1 - t0,
               "seconds": t2 - t1}
        records.append(rec)
        if on_case is not None:
            on_case(rec)
    return records


def mixed_table(records: list[dict]) -> str:
    """Markdown: per case and medians."""
    head = ("| case | family | SNR | species | tail, species 0 / 1 | single kernel 0 / 1 | "
            "found | assigned | s (one species) |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in records:
        t, s = r["tail_per_species"], r["single_tail_per_species"]
        lines.append(f"| {r['index']} | {r['family']} | {r['snr']:g} | {r['n_types']} | "
                     f"{t[0]:.3f} / {t[1]:.3f} | {s[0]:.3f} / {s[1]:.3f} | "
                     f"{r['found']:.2f} | {r['assigned']:.2f} | {r['seconds']:.1f} "
                     f"({r['seconds_one']:.1f}) |")
    t = np.array([r["tail_per_species"] for r in records])
    s = np.array([r["single_tail_per_species"] for r in records])
    n2 = sum(r["n_types"] == 2 for r in records)
    lines.append(f"| median | | | 2 on {n2}/{len(records)} | {np.median(t[:, 0]):.3f} / "
                 f"{np.median(t[:, 1]):.3f} | {np.median(s[:, 0]):.3f} / "
                 f"{np.median(s[:, 1]):.3f} | "
                 f"{np.median([r['found'] for r in records]):.2f} | "
                 f"{np.median([r['assigned'] for r in records]):.2f} | "
                 f"{np.median([r['seconds'] for r in records]):.1f} "
                 f"({np.median([r['seconds_one'] for r in records]):.1f}) |")
    return "\n".join(lines)
