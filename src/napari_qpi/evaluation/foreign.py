"""Every method, blind, on the foreign validation set (``napari-qpi benchmark --foreign``).

The set (``../shared/data/foreign``, see its README) comes from a QPI simulator that is
not part of napari-qpi: its own band parameters, defects (point, dimer, compact) and
noise. ``maps.npz`` holds single-energy 128×128 maps, ``stacks.npz`` 8-energy stacks; each
case has the true 65×65 kernel. It is for measuring only — never train or tune on it.

Each method runs as a user would run it on a new map: blind, default settings, the
kernel window chosen from the data; :func:`~.score.score` compares the kernel with the
truth on the truth's 65-px window (a smaller kernel zero-padded: a window that misses
the tail pays for it). Beside those scores stand the ones a user sees
without a truth (``Extraction.info``), so one can judge whether they would have warned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..progress import Progress, drain
from .benchmark import BLIND_METRICS, auto_pick_rate, record, table

__all__ = ["ForeignCase", "default_directory", "foreign_table", "iter_cases", "iter_foreign",
           "load_foreign", "run_foreign"]

FILES = ("maps", "stacks")
#: Columns of the foreign tables: the headline score against the truth, the same blind
#: to which dimer site the kernel is centred on (a diagnostic), then the
#: no-ground-truth scores.
COLUMNS = ("tail_similarity", "aligned_tail_similarity", "kernel_similarity",
           *BLIND_METRICS, "kernel_size")


@dataclass(frozen=True)
class ForeignCase:
    """One case of the foreign set."""

    set: str  # "maps" or "stacks"
    index: int
    family: str
    defect: str  # "point", "dimer" or "compact"
    snr: float
    observation: np.ndarray  # (H, W) or (E, H, W)
    kernel: np.ndarray  # (k, k) or (E, k, k)
    positions: np.ndarray  # (N, 2) int (row, col)
    artefacts: tuple[str, ...] = ()  # the instrument set's artefacts (none: foreign)


def default_directory(name: str = "foreign") -> Path | None:
    """``../shared/data/<name>`` (``foreign`` or ``instrument``) next to the working
    directory or to this checkout."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents[2:5]):
        d = base.parent / "shared" / "data" / name
        if (d / "maps.npz").is_file() or (d / "stacks.npz").is_file():
            return d
    return None


def load_foreign(directory, *, limit: int | None = None) -> list[ForeignCase]:
    """The cases of ``maps.npz`` then ``stacks.npz`` in ``directory``; a missing file is
    skipped, a folder with neither is a ValueError.

    ``limit``: at most this many cases of each file, evenly spread over the file (which
    is ordered by defect kind and SNR), so a small run still sees every kind.
    """
    directory = Path(directory)
    found = [directory / f"{name}.npz" for name in FILES
             if (directory / f"{name}.npz").is_file()]
    if not found:
        raise ValueError(f"{directory}: no maps.npz or stacks.npz (the foreign set's files)")
    cases = []
    for path in found:
        with np.load(path, allow_pickle=False) as z:
            try:
                meta = json.loads(bytes(z["meta_json"]).decode())
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}: no readable meta_json member ({exc})") from None
            if limit is not None and limit < len(meta):
                keep = np.unique(np.linspace(0, len(meta) - 1, limit).round().astype(int))
                meta = [meta[i] for i in keep]
            for m in meta:
                key = f"{int(m['index']):02d}_"
                cases.append(ForeignCase(
                    path.stem, int(m["index"]), str(m["family"]), str(m["defect"]),
                    float(m["snr"]), z[key + "observation"], z[key + "kernel"],
                    z[key + "positions"], tuple(m.get("artefacts", ()))))
    return cases


def iter_foreign(methods, directory=None, *, limit: int | None = None,
                 weights: str = "default", kernel_size: int | None = None,
                 guided: bool = False) -> Generator[Progress, None, list[dict]]:
    """Generator form of :func:`run_foreign`: one :class:`Progress` per case and method
    (the record in ``info["record"]``); returns the records."""
    directory = default_directory() if directory is None else directory
    if directory is None:
        raise ValueError("no foreign set found at ../shared/data/foreign; pass its folder")
    return (yield from iter_cases(methods, load_foreign(directory, limit=limit),
                                  weights=weights, kernel_size=kernel_size, guided=guided))


def iter_cases(methods, cases: list[ForeignCase], *, weights: str = "default",
               kernel_size: int | None = None,
               guided: bool = False) -> Generator[Progress, None, list[dict]]:
    """Every method on each case, scored against its truth (the loop of
    :func:`iter_foreign`, for any list of cases)."""
    from ..extraction.extract import extract
    from ..extraction.registry import get_method

    if not guided:
        methods = [m for m in methods if not get_method(m).needs_positions]
    total, records = len(cases) * len(methods), []
    for case in cases:
        for method in methods:
            t0 = time.perf_counter()
            res = extract(case.observation, method=method, weights=weights,
                          kernel_size=kernel_size,
                          positions=case.positions if guided else None)
            rec = {"set": case.set, "index": case.index, "family": case.family,
                   "defect": case.defect, "snr": case.snr, "method": method,
                   "mode": "guided" if guided else "blind",
                   "energies": int(np.shape(case.observation)[0]) if case.set == "stacks"
                   else 1, **record(res, case.kernel, time.perf_counter() - t0),
                   **density(res, case)}
            records.append(rec)
            yield Progress(f"{method} on {case.set} {case.index:02d}", len(records), total,
                           {"record": rec})
    return records


def density(res, case: ForeignCase) -> dict:
    """The scatterer map against the true scatterers: distinct scatterers found and
    active pixels, each per true scatterer; and the kernel window and the extracted
    pattern's reach (``info["kernel_extent"]``, :func:`~..extraction.finish.reported_extent`),
    each against the true kernel's extent (``window_ratio``, ``extent_ratio``; the true
    extent is the diameter where its radial RMS last exceeds 5 % of its peak,
    :func:`~..extraction.finish.kernel_extent`; a window cut to a defect's core reads
    far below 1)."""
    from ..extraction.finish import kernel_extent

    n = max(len(case.positions), 1)
    found = res.info.get("scatterers_found", np.nan)
    true = kernel_extent(case.kernel)
    got = res.info.get("kernel_extent")
    return {"artefacts": case.artefacts, "scatterers": len(case.positions),
            "found_per_true": float(found) / n,
            "active_per_true": float(np.count_nonzero(res.activation)) / n,
            "window_ratio": float(np.shape(res.kernel)[-1]) / true,
            "extent_ratio": (float(got) / true if isinstance(got, (int, np.integer))
                             else np.nan)}


def run_foreign(methods, directory=None, *, limit: int | None = None,
                weights: str = "default", kernel_size: int | None = None,
                guided: bool = False,
                on_event: Callable[[Progress], None] | None = None) -> list[dict]:
    """Run each method blind on every foreign case and score it against the truth.

    Parameters
    ----------
    methods : sequence of str
        Registered method names; those that need scatterer positions are skipped.
    directory : path, optional
        Folder holding ``maps.npz`` and/or ``stacks.npz``; default
        ``../shared/data/foreign``.
    limit : int, optional
        At most this many cases of each file (in file order).
    weights : str
        Weight set of the learned methods.
    kernel_size : int, optional
        Kernel window every method returns; default: chosen from the data, as a user
        would run it.
    guided : bool
        Give every method the true scatterer positions (an oracle no user has: it
        separates what finding the scatterers costs from what reading the kernel
        does); default blind.
    on_event : callable, optional
        Called with each :class:`~napari_qpi.progress.Progress`.

    Returns
    -------
    list of dict
        One record per (case, method): ``set``, ``index``, ``family``, ``defect``,
        ``snr``, ``method``, ``mode`` (``"blind"`` or ``"guided"``), the scores of
        :func:`~.score.score` (medians over energies), ``relative_residual``,
        ``cv_residual``, ``whiteness``, ``active_fraction``, ``kernel_size`` (the
        window the method returned; NaN when not reported), ``seconds``, ``chosen``
        (what ``auto`` picked) and ``window`` (the truth's window, on which the scores
        are taken).
    """
    return drain(iter_foreign(methods, directory, limit=limit, weights=weights,
                              kernel_size=kernel_size, guided=guided), on_event)


def foreign_table(records: list[dict]) -> str:
    """Markdown: for maps and stacks separately, medians (and worst deciles) per method
    and defect kind, then per method and SNR, and auto's pick rate when it ran."""
    out = []
    for name in FILES:
        rs = [r for r in records if r["set"] == name]
        if not rs:
            continue
        n = len({r["index"] for r in rs})
        mode = " and ".join(sorted({r.get("mode", "blind") for r in rs}))
        out += [f"### Foreign {name} ({n} cases, {mode})", "",
                table(rs, group=("method", "defect"), metrics=COLUMNS, per="case",
                      pick_rate=False), "",
                table(rs, group=("method", "snr"), metrics=COLUMNS, per="case",
                      pick_rate=False), ""]
        hits, judged = auto_pick_rate(rs, keys=("set", "index"))
        if judged:
            out += [f"auto's pick had the best tail similarity among its candidates in "
                    f"{hits} of {judged} {name} ({100 * hits / judged:.0f} %).", ""]
    return "\n".join(out).rstrip()
