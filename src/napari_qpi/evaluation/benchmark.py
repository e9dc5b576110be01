"""``napari-qpi benchmark``: every method on the same seeded cases, one markdown table.

Cases: single-energy 128×128 maps of kernels drawn from the evaluation stream (kernels
never drawn in training) of the seen and unseen families, linear and multi-impurity
T-matrix ("entangled") scattering, 8–40 scatterers, SNR 20 / 5 / 1. Learned methods use
the weights trained on the seen split only, so the unseen rows are honest.

Next to the scores against the true kernel, the table shows the scores a user gets
without one (``Extraction.info``: relative and cross-validated residual, whiteness,
active fraction), and — when ``auto`` runs — how often its pick was the candidate with
the truly best tail similarity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..physics.sampling import EVAL_STREAM, SPLITS, sample_spec, simulate_spec
from .score import score

SNRS = (20.0, 5.0, 1.0)
#: Columns against the true kernel (from :func:`~.score.score`) and without it (from
#: ``Extraction.info``), in table order.
TRUTH_METRICS = ("tail_similarity", "kernel_similarity", "paper_rmse", "qspace_correlation")
BLIND_METRICS = ("relative_residual", "cv_residual", "whiteness", "active_fraction")
METRICS = TRUTH_METRICS + BLIND_METRICS
SHORT = {"tail_similarity": "tail", "aligned_tail_similarity": "tail, aligned",
         "kernel_similarity": "kernel", "paper_rmse": "RMSE",
         "qspace_correlation": "q-corr", "relative_residual": "resid",
         "cv_residual": "cv-resid", "whiteness": "white", "active_fraction": "active",
         "kernel_size": "window px"}
#: Metrics where lower is better: their "worst decile" is the 90th percentile.
LOWER_IS_BETTER = ("paper_rmse", "relative_residual", "cv_residual")
MODES = ("blind", "guided")


@dataclass(frozen=True)
class Case:
    """One benchmark map and its truth."""

    split: str
    family: str
    snr: float
    scattering: str
    observation: np.ndarray  # (1, H, W)
    kernel: np.ndarray  # (k, k)
    positions: np.ndarray


def make_cases(n: int = 8, *, seed: int = 0, size: int = 128, kernel_size: int = 65,
               splits=("seen", "unseen"), snrs=SNRS) -> list[Case]:
    """``n`` cases per (split, SNR); every third is T-matrix scattering."""
    if int(n) < 1:
        raise ValueError(f"n={n} cases per cell: need at least 1")
    rng = np.random.default_rng(EVAL_STREAM + seed)
    cases = []
    for split in splits:
        fams = SPLITS[split]
        for snr in snrs:
            for i in range(int(n)):
                fam = fams[i % len(fams)]
                spec = sample_spec(fam, rng)
                scattering = "tmatrix" if i % 3 == 2 else "linear"
                sim = simulate_spec(spec, shape=(size, size),
                                    n_scatterers=int(rng.integers(8, 41)),
                                    kernel_size=kernel_size, model=scattering, snr=snr,
                                    seed=int(rng.integers(2**31)))
                cases.append(Case(split, fam, snr, scattering, sim.observation,
                                  sim.kernel[0], sim.positions))
    return cases


def plan(methods, cases: list, *, modes=MODES) -> list[tuple[str, str, object]]:
    """Every (method, mode, case) a run visits: blind only where a method can run
    without positions, guided only where it uses them (read from the registry)."""
    from ..extraction.registry import get_method

    todo = []
    for name in methods:
        m = get_method(name)
        for mode in modes:
            if (mode == "blind" and m.needs_positions) or (
                    mode == "guided" and not m.accepts_positions):
                continue
            todo.extend((name, mode, case) for case in cases)
    return todo


def record(res, truth: np.ndarray, seconds: float) -> dict:
    """The scores of one :class:`~napari_qpi.Extraction` against ``truth``, its
    no-ground-truth scores from ``info``, timings and the method auto chose."""
    info = res.info
    rec = {"seconds": seconds, "seconds_kernel": info.get("seconds_kernel", np.nan),
           "chosen": res.method, "candidates": tuple(info.get("candidates") or ()),
           **score(truth, res.kernel)}
    for m in (*BLIND_METRICS, "kernel_size"):
        v = info.get(m)
        rec[m] = float(v) if v is not None else np.nan
    return rec


def run(methods, cases: list[Case], *, modes=MODES, weights: str = "seen",
        progress: Callable[[dict], None] | None = None) -> Iterator[dict]:
    """Yield one record per (method, mode, case) of :func:`plan`."""
    from ..extraction.extract import extract

    index = {id(c): i for i, c in enumerate(cases)}
    for method, mode, case in plan(methods, cases, modes=modes):
        pos = case.positions if mode == "guided" else None
        t0 = time.perf_counter()
        res = extract(case.observation, method=method, positions=pos,
                      kernel_size=case.kernel.shape[-1], weights=weights)
        rec = {"method": method, "mode": mode, "split": case.split, "snr": case.snr,
               "family": case.family, "scattering": case.scattering, "case": index[id(case)],
               **record(res, case.kernel, time.perf_counter() - t0)}
        if progress is not None:
            progress(rec)
        yield rec


def auto_pick_rate(records: list[dict], keys=("mode", "case")) -> tuple[int, int]:
    """How often a selecting method (``auto``) chose the candidate with the truly best
    tail similarity.

    A selecting method is one whose result lists its ``candidates`` (read from
    ``Extraction.info``, not from its name). For each of its records, the records of the
    same case (same ``keys``) whose method was one of the candidates are compared by tail
    similarity; a hit is a chosen method that scored the best (ties count). Cases where
    the choice was not run on its own are not judged. Returns (hits, judged cases);
    (0, 0) when no selecting method ran.
    """
    hits = n = 0
    for a in (r for r in records if r.get("candidates")):
        tails = {r["method"]: r["tail_similarity"] for r in records
                 if r["method"] in a["candidates"] and all(r[k] == a[k] for k in keys)}
        if a["chosen"] not in tails:
            continue
        n += 1
        hits += tails[a["chosen"]] >= max(tails.values()) - 1e-9
    return hits, n


def _cell(values, metric: str) -> list[str]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return ["–", "–"]
    p = 90 if metric in LOWER_IS_BETTER else 10
    if metric == "kernel_size":  # the window a method chose: median and range
        return [f"{np.median(v):.0f}", f"{v.min():.0f}–{v.max():.0f}"]
    return [f"{np.median(v):.3f}", f"{np.percentile(v, p):.3f}"]


def table(records: list[dict], *, group=("method", "split", "mode", "snr"),
          metrics=METRICS, per: str = "slice", pick_rate: bool = True) -> str:
    """Markdown: one row per ``group`` key; median and worst decile (w10: the 10th
    percentile of similarities, the 90th of errors and residuals) of each metric;
    median seconds per slice to the kernel and for the whole ``extract`` (activation
    and residual included; ``per`` names the unit). A line below gives auto's pick
    rate when it ran (``pick_rate``)."""
    head = [*group, "n"]
    for m in metrics:
        head += [f"{SHORT[m]} med", f"{SHORT[m]} " + ("range" if m == "kernel_size"
                                                        else "w10")]
    head += [f"s/{per} kernel", f"s/{per} total"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys: list[tuple] = []
    for r in records:
        key = tuple(r[g] for g in group)
        if key not in keys:
            keys.append(key)
    for key in keys:
        rs = [r for r in records if tuple(r[g] for g in group) == key]
        row = [f"{k:g}" if isinstance(k, float) else str(k) for k in key] + [str(len(rs))]
        for m in metrics:
            row += _cell([r.get(m, np.nan) for r in rs], m)
        row.append(f"{np.nanmedian([r['seconds_kernel'] for r in rs]):.4f}")
        row.append(f"{np.median([r['seconds'] for r in rs]):.3f}")
        lines.append("| " + " | ".join(row) + " |")
    hits, n = auto_pick_rate(records) if pick_rate else (0, 0)
    if n:
        lines += ["", f"auto's pick was the candidate with the best tail similarity in "
                      f"{hits} of {n} cases ({100 * hits / n:.0f} %)."]
    return "\n".join(lines)
