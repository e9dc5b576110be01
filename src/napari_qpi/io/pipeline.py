"""Preprocessing as a list of named steps: chosen automatically where it is safe, recorded,
and replayable.

A step is ``{"step": name, **keyword arguments}``; :func:`preprocess` applies a list of
them in order and returns the list it applied, so ``preprocess(data, applied)`` replays
a run exactly. ``"auto"`` applies only what cannot remove QPI signal and what the data
shows it needs:

- ``background`` (a degree-2 polynomial per slice) always: it varies on the scale of the
  whole map, far slower than any QPI wavelength;
- ``lines`` (each scan line's median) when the lines' medians vary clearly more than the
  columns' (:data:`LINE_RATIO`): per-line offsets are an artefact, a QPI pattern is not
  striped along the scan;
- ``drift`` (Lawler–Fujita, :func:`~.lattice.correct_drift`) when the lattice shows two
  non-collinear Bragg directions: the lattice is then a reference for the piezo's drift,
  and a drifted lattice smears its Bragg peaks past any notch. On the project's own
  instrument draws (``python scripts/drift_choice.py --n 40``: the 20 maps with a lattice,
  two-stage; lattice-free maps never get it) it raised the median tail similarity from
  0.829 to 0.849 and cut the scatterers found per true one from 5.2 to 3.4;
- ``bragg`` (the lattice's Bragg waves subtracted, each with its local amplitude and
  phase: :func:`~.lattice.lattice_waves`) when isolated high-q peaks stand far above
  their surroundings (:func:`~.lattice.find_bragg_peaks`): QPI gives rings and arcs, not
  isolated spikes. Recorded with its method (``"local"``); ``{"step": "bragg",
  "method": "notch"}`` notches the peaks out of the FFT instead (what a plain
  ``"bragg"`` step did before 2026-12-08).

The lock-in deconvolution (``lockin``, which needs the time constant) is applied only
when asked for.
"""

from __future__ import annotations

import numpy as np

from . import lattice
from . import preprocess as pp

__all__ = ["STEPS", "auto_steps", "preprocess"]

#: Line-to-line variation of the rows' medians, relative to the columns', above which
#: "auto" removes per-line offsets. An isotropic map reads about 1.
LINE_RATIO = 3.0


#: Step name → function of :mod:`napari_qpi.io.preprocess` / :mod:`napari_qpi.io.lattice`.
FUNCTIONS = {
    "background": pp.subtract_background,
    "plane": pp.subtract_plane,
    "lines": pp.flatten_lines,
    "streaks": pp.suppress_streaks,
    "drift": lattice.correct_drift,
    "bragg": pp.remove_bragg_peaks,
    "lockin": pp.deconvolve_lockin,
    "normalize": pp.normalize_slices,
}
#: Names of the steps :func:`preprocess` knows.
STEPS = tuple(FUNCTIONS)


def auto_steps(data) -> list[dict]:
    """The steps ``"auto"`` applies to ``data`` (see the module notes), in order."""
    steps = [{"step": "background", "order": 2}]
    flat = pp.subtract_background(data, order=2)
    if pp.line_offset_ratio(flat) > LINE_RATIO:
        steps.append({"step": "lines", "method": "median"})
        flat = pp.flatten_lines(flat)  # offsets put spikes on the q_x = 0 axis
    peaks = lattice.find_bragg_peaks(flat)
    if lattice.lattice_vectors(peaks) is not None:
        steps.append({"step": "drift"})  # the lattice is the reference: undo the drift
    if len(peaks):
        steps.append({"step": "bragg", "method": "local"})
    return steps


def _normalise(steps) -> list[dict]:
    if steps is None or (isinstance(steps, str) and steps == "none"):
        return []
    if isinstance(steps, str):
        steps = [steps]
    if not isinstance(steps, (list, tuple)):
        raise ValueError(f"preprocess={steps!r} must be 'auto', None or a list of step "
                         f"names ({', '.join(STEPS)})")
    out = []
    for s in steps:
        if isinstance(s, str):
            s = {"step": s}
        if not isinstance(s, dict) or s.get("step") not in STEPS:
            name = s.get("step") if isinstance(s, dict) else s
            raise ValueError(f"preprocess step {name!r} is unknown; choose from "
                             f"{', '.join(STEPS)}, or preprocess='auto' / None")
        out.append(dict(s))
    return out


def preprocess(data, steps="auto") -> tuple[np.ndarray, list[dict]]:
    """Apply preprocessing steps to a copy of ``data``.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    steps : "auto", None, or sequence of str or dict
        ``"auto"``: the safe steps the data needs (:func:`auto_steps`); None or
        ``"none"``: nothing; otherwise step names (:data:`STEPS`) or
        ``{"step": name, **keyword arguments}`` dicts, applied in order.

    Returns
    -------
    (ndarray, list of dict)
        The preprocessed data (same shape) and the steps applied, which replay the run.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.add.outer(np.arange(32.0), np.zeros(32))  # a tilted map
    >>> out, applied = preprocess(y, ["background"])
    >>> applied, float(abs(out).max()) < 1e-9
    ([{'step': 'background'}], True)
    """
    if isinstance(steps, str) and steps == "auto":
        steps = auto_steps(data)
    applied = _normalise(steps)
    out = np.asarray(data)
    for s in applied:
        kwargs = {k: v for k, v in s.items() if k != "step"}
        try:
            out = FUNCTIONS[s["step"]](out, **kwargs)
        except TypeError as exc:
            raise ValueError(f"preprocess step {s['step']!r}: {exc}") from None
    if not applied:
        out = np.array(out, copy=True)
    return out, applied
