"""``napari-qpi benchmark``: every method on the same seeded cases, one markdown table.

Cases: single-energy 128×128 maps of kernels drawn from the evaluation stream (kernels
never drawn in training) of the seen and unseen families, linear and multi-impurity
T-matrix ("entangled") scattering, 8–40 scatterers, SNR 20 / 5 / 1. Learned methods use
the weights trained on the seen split only, so the unseen rows are honest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .physics.kernels import crop_centered
from .physics.sampling import EVAL_STREAM, SPLITS, sample_spec
from .physics.simulation import simulate

SNRS = (20.0, 5.0, 1.0)
METRICS = ("tail_similarity", "kernel_similarity", "paper_rmse", "qspace_correlation",
           "relative_residual")
SHORT = {"tail_similarity": "tail", "kernel_similarity": "kernel", "paper_rmse": "RMSE",
         "qspace_correlation": "q-corr", "relative_residual": "resid"}


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
    rng = np.random.default_rng(EVAL_STREAM + seed)
    cases = []
    for split in splits:
        fams = SPLITS[split]
        for snr in snrs:
            for i in range(n):
                fam = fams[i % len(fams)]
                spec = sample_spec(fam, rng)
                scattering = "tmatrix" if i % 3 == 2 else "linear"
                sim = simulate(band=spec.band, energies=[spec.energy], defects=[spec.defect],
                               shape=(size, size), n_scatterers=int(rng.integers(8, 41)),
                               kernel_size=kernel_size, pixel_size=spec.pixel_size,
                               broadening=spec.broadening, tip_blur=spec.blur,
                               model=scattering, snr=snr, seed=int(rng.integers(2**31)))
                cases.append(Case(split, fam, snr, scattering, sim.observation,
                                  sim.kernel[0], sim.positions))
    return cases


def score(kernel: np.ndarray, truth: np.ndarray, residual_ratio: float) -> dict[str, float]:
    """All metrics of one estimate (the extracted kernel cropped to the truth's window)."""
    from .extraction import metrics

    k = crop_centered(kernel, truth.shape[-1]) if kernel.shape[-1] > truth.shape[-1] else kernel
    return {
        "tail_similarity": float(metrics.tail_similarity(truth, k)),
        "kernel_similarity": float(metrics.kernel_similarity(truth, k)),
        "paper_rmse": float(metrics.paper_rmse(truth, k)),
        "qspace_correlation": float(metrics.qspace_correlation(truth, k)),
        "relative_residual": residual_ratio,
    }


def run(methods, cases: list[Case], *, modes=("blind", "guided"), weights: str = "seen",
        progress=None) -> Iterator[dict]:
    """Yield one record per (method, mode, case) that the method supports."""
    from .extraction.extract import extract

    for method in methods:
        for mode in modes:
            if mode == "blind" and method == "wiener":
                continue
            if mode == "guided" and method in ("sbd", "power"):
                continue
            for case in cases:
                pos = case.positions if mode == "guided" else None
                kwargs = {"weights": weights} if method in ("two-stage", "one-step",
                                                            "refine") else {}
                t0 = time.perf_counter()
                res = extract(case.observation, method=method, positions=pos,
                              kernel_size=case.kernel.shape[-1], **kwargs)
                dt = time.perf_counter() - t0
                rec = {"method": method, "mode": mode, "split": case.split, "snr": case.snr,
                       "family": case.family, "scattering": case.scattering, "seconds": dt,
                       "seconds_kernel": res.info["seconds_kernel"],
                       **score(res.kernel[0], case.kernel, res.info["relative_residual"])}
                if progress is not None:
                    progress(rec)
                yield rec


def table(records: list[dict]) -> str:
    """Markdown: rows method × split × mode × SNR; median and worst decile (w10: the
    10th percentile of similarities, the 90th of errors) of each metric; median
    seconds per slice to the kernel and for the whole ``extract`` (activation and
    residual included)."""
    head = ["method", "families", "mode", "SNR", "n"]
    for m in METRICS:
        head += [f"{SHORT[m]} med", f"{SHORT[m]} w10"]
    head += ["s/slice kernel", "s/slice total"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = []
    for r in records:
        key = (r["method"], r["split"], r["mode"], r["snr"])
        if key not in keys:
            keys.append(key)
    for key in keys:
        rs = [r for r in records if (r["method"], r["split"], r["mode"], r["snr"]) == key]
        row = [key[0], key[1], key[2], f"{key[3]:g}", str(len(rs))]
        for m in METRICS:
            v = np.array([r[m] for r in rs])
            # for errors the 10th percentile of the bad side is the 90th
            p = 90 if m in ("paper_rmse", "relative_residual") else 10
            row += [f"{np.median(v):.3f}", f"{np.percentile(v, p):.3f}"]
        row.append(f"{np.median([r['seconds_kernel'] for r in rs]):.4f}")
        row.append(f"{np.median([r['seconds'] for r in rs]):.3f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
