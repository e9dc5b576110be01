"""What the extraction widget runs in its worker thread, and how results read.

:func:`batch_job` chains the progress generators of several :class:`~.compute.Request`
objects: each progress event is prefixed with the layer (in a batch) and the method, so
the progress label always says what is running; each finished extraction is yielded as
a :class:`Done` so the viewer shows it at once; a failure becomes a :class:`Failed`
instead of an exception. Nothing here touches Qt.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..extraction.extract import Extraction
    from .compute import Request


@dataclass(frozen=True)
class Done:
    """One request finished; ``observation`` is the preprocessed data, if any.

    ``first_look``: not the end of the request but its quick first result (the network's
    kernel, shown while ``auto`` refines it; :attr:`.compute.Request.first_look`).
    """

    request: Request
    extraction: Extraction
    observation: np.ndarray | None = None
    first_look: bool = False


@dataclass(frozen=True)
class Failed:
    """One request raised: shown as a notification, the batch goes on."""

    request: Request | None
    error: Exception


def batch_job(requests: Sequence[Request], stop: threading.Event | None = None
              ) -> Generator:
    """Run ``requests`` in turn; yield Progress, Done and Failed; return the count done.

    ``stop``: set by the dock's Cancel. The solvers then stop within one iteration
    (:func:`~napari_qpi.progress.checkpoint`), not only at the next progress event; the
    job yields once more so that the worker, asked to quit too, reports the abort.
    """
    from ..progress import cancellable

    with cancellable(stop):
        done = yield from _run(requests)
    return done


def _run(requests: Sequence[Request]) -> Generator:
    from ..progress import Cancelled, Progress

    n, done = len(requests), 0
    for i, request in enumerate(requests):
        prefix = f"[{i + 1}/{n}] {request.source.name}: " if n > 1 else ""
        steps = request.steps()
        fitted = None
        try:
            while True:
                try:
                    event = next(steps)
                except StopIteration as stop:
                    yield Done(request, stop.value, fitted)
                    done += 1
                    break
                fitted = event.info.get("observation", fitted)
                if "first_look" in event.info:
                    yield Done(request, event.info["first_look"], fitted, first_look=True)
                info = {k: v for k, v in event.info.items()
                        if k not in ("observation", "first_look")}
                # where the step sits in the batch, and its own name (for its timing)
                info.update(request=i, requests=n, step_name=event.message)
                yield Progress(f"{prefix}{request.method}: {event.message}", event.step,
                               event.total, info)
        except Cancelled:  # Cancel landed inside a step: nothing to show
            yield Progress("cancelled", 1, 1)
            return done
        except Exception as exc:  # shown to the user; the viewer stays usable
            yield Failed(request, exc)
        finally:
            steps.close()  # a cancel lands here too: the library generator stops
    return done


def message(exc: Exception) -> str:
    """A notification for a failed extraction (validation errors read as advice)."""
    if isinstance(exc, ValueError):
        return f"Extraction: {exc}"
    return f"Extraction failed ({type(exc).__name__}): {exc}"


def quality_warnings(info: dict) -> list[str]:
    """The library's warnings, plus one when the fit explains little of the map."""
    out = [str(w) for w in info.get("warnings", [])]
    rel = info.get("relative_residual")
    if rel is not None and rel > 0.8 and not any("residual" in w for w in out):
        out.append(f"the kernel explains little of this map (residual {rel:.2f} of the "
                   "signal); do not trust its details")
    return out


def summary(result: Extraction, found: dict) -> str:
    """Lines for the result label: method, time, window, quality, scores, warnings."""
    info = result.info
    method = result.method
    requested = info.get("requested_method")
    if requested and requested != method:
        method = f"{requested} → {method}"
    k = info.get("kernel_size", result.kernel.shape[-1])
    auto = " (auto)" if info.get("kernel_size_auto") else ""
    extent = (f", pattern {info['kernel_extent']} px across"
              if isinstance(info.get("kernel_extent"), int) else "")
    lines = [f"{method}: {info.get('seconds', float('nan')):.1f} s, kernel {k} px{auto}"
             f"{extent}"]
    quality = [f"{label} {info[key]:.2f}" for key, label in (
        ("relative_residual", "residual"), ("cv_residual", "cross-validated"),
        ("whiteness", "whiteness")) if isinstance(info.get(key), int | float)]
    if isinstance(info.get("relative_residual_zero_width"), int | float):
        quality.append(f"(a zero-width kernel: {info['relative_residual_zero_width']:.2f})")
    if quality:
        lines.append(", ".join(quality))
    if isinstance(info.get("scatterers_found"), int):
        lines.append(f"scatterers: {info['scatterers_found']} found, "
                     f"{100 * info.get('active_fraction', 0):.1f} % of pixels active")
    if info.get("n_types", 1) > 1:
        lines.append(f"defect species: {info['n_types']} (scatterers "
                     + " / ".join(map(str, info["scatterers_per_type"])) + ", share "
                     + " / ".join(f"{100 * v:.0f} %" for v in info["explained_per_type"])
                     + f", separation {info['separation']:.2f})")
    elif isinstance(info.get("types_cv"), dict) and len(info["types_cv"]) > 1:
        lines.append("defect species: 1 (held-out residual by number: " + ", ".join(
            f"{n} {v:.2f}" for n, v in info["types_cv"].items()) + ")")
    if info.get("preprocess"):
        lines.append("preprocessed: " + ", ".join(s["step"] for s in info["preprocess"]))
    if isinstance(info.get("lockin_delay"), int | float) and info["lockin_delay"] > 0:
        lines.append(f"lock-in: pole {info['lockin_pole']:.2f} read from the residual; the "
                     f"kernel moved {info['lockin_delay']:.1f} px along x, so the scatterers "
                     "sit behind their patterns (a map scanned right to left: mirror it "
                     "first)")
    gain = info.get("refinement_gain")
    two = (info.get("candidates") or {}).get("two-stage") or {}
    if isinstance(gain, int | float) and isinstance(two.get("cv_residual"), int | float):
        lines.append(f"refinement: cross-validated residual {100 * gain:.0f} % lower than "
                     f"the two-stage network's alone ({two['cv_residual']:.2f})")
    candidates = info.get("candidates") or {}
    scored = {name: c["cv_residual"] for name, c in candidates.items()
              if isinstance(c, dict) and isinstance(c.get("cv_residual"), int | float)}
    if scored:
        lines.append("candidates (cross-validated residual): " + ", ".join(
            f"{name} {value:.2f}" for name, value in sorted(scored.items(),
                                                           key=lambda kv: kv[1])))
    if found:
        lines.append(f"vs ground truth: tail {found['tail_similarity']:.2f}, "
                     f"kernel {found['kernel_similarity']:.2f}")
    lines += [f"⚠ {w}" for w in quality_warnings(info)]
    return "\n".join(lines)
