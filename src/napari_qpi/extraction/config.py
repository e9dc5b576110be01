"""Every rule and budget of the automatic choices, in one frozen value.

``extract(..., config=AutoConfig(...))`` overrides any of them; the defaults are what
``method="auto"`` does. Each margin was chosen on our own simulated class draws, never on
a validation set (the record: ``docs/notes/``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ONE_VIEW", "AutoConfig"]


@dataclass(frozen=True)
class AutoConfig:
    """The rules ``auto`` (and ``refine``, and the automatic window) decide by.

    Every choice below compares cross-validated residuals: how well a kernel predicts
    pixels held out of its fit (:mod:`~napari_qpi.extraction.quality`). A margin is
    relative to the score it is compared with unless said otherwise.

    Attributes
    ----------
    prefer_margin : float
        ``auto`` keeps the latent fit (the learned prior fitted to the map) unless another
        candidate's residual is lower by more than this (default 0.10), or the fit does
        worse than the network's kernel it started from; then that kernel, under the same
        margin.
    window_margin : float
        With an automatic window, the widest window is kept unless a crop of the kernel
        predicts held-out pixels better by more than this (default 0.05): the tail
        carries little energy but much of the physics.
    zoom_margin : float
        A learned method's reading of the map resampled to the networks' working scale is
        kept over the map as it is only when its residual is lower by more than this
        (absolute, default 0.01): resampling blurs.
    views : tuple of int
        Quarter turns of one map the latent fit starts from (default all four); the view
        whose fit predicts held-out pixels best is kept. Fewer views: faster, less sure.
    stack_views : tuple of int
        The same for an energy stack (default all four). A long stack's views run one
        after another, so each costs a whole fit: ``(0,)`` halves the time of an
        8-energy stack (a longer one chooses its view on eight energies:
        ``view_energies``). On our own instrument stacks (32 draws) one view gave the same
        median tail similarity as four (paired median 0.000), but on the instrument
        validation set's six stacks it lost 0.049 (paired median; foreign stacks
        +0.001), so four stay the default and one is a speed knob for large grids (on
        our own 48-energy stacks one view scored +0.017, paired median, at 2.2× the
        speed; no validation stack is that long).
    view_energies : int or None
        A stack of more energies than this (default 8) chooses the latent fit's view
        on this many of its energies, evenly spaced, and fits the whole stack from that
        view alone; its candidates are judged on the same energies (the SBD refinements
        run and every candidate is scored there; only a kept refinement then runs on
        every energy, :func:`~.methods.refine.judging`). None: every view and every
        candidate on every energy. Eight energies of four views are
        one batch of the decoder (:data:`~.methods.latent.BATCH_KERNELS`), so a long
        grid's view choice costs about one 8-energy fit, and a stack of at most eight
        energies is fitted as before. On our own instrument stacks
        (``scripts/stack_views.py``) the same kernel as choosing on every energy on 8 of
        10 (24 and 48 energies; the others +0.011 and −0.015 in tail similarity), at
        1.5× and 1.9× the speed.
    refine_iterations : (int, int)
        Iterations of the two phases of the SBD refinements (:mod:`..sbd`): few, since
        they start near an answer.
    latent_iterations : (int, int, int)
        The latent fit's alternations, Adam steps on the latent per alternation, and
        FISTA iterations per activation fit.
    view_blend : float
        Views of the latent fit whose held-out residual is within this fraction of the
        best view's (default 0.02) are averaged (their unit-norm kernels, at the best
        view's norm), and the mean is kept where its own residual is within that
        fraction of the best too; 0 keeps the best view alone. Where views tie, the pick
        between them is a coin toss between kernels that can differ by 0.3 in tail
        similarity (docs/extraction.md §6).
    view_pruning : tuple of (int, int)
        ``(a, n)``: after alternation ``a`` of the latent fit only the ``n`` views that
        predict held-out pixels best go on (each view's kernel and activation so far);
        empty (default): every view runs to the end. ``((2, 2), (4, 1))`` made ``auto``
        about a fifth faster on maps and a quarter on 8-energy stacks on our own draws;
        the paired median tail similarity did not move, but single kernels did, by up to
        ±0.07, and on stacks more often down (mean −0.011 over 12) — so it is a speed
        knob, not the default.
    """

    prefer_margin: float = 0.10
    window_margin: float = 0.05
    zoom_margin: float = 0.01
    views: tuple[int, ...] = (0, 1, 2, 3)
    stack_views: tuple[int, ...] = (0, 1, 2, 3)
    view_energies: int | None = 8
    refine_iterations: tuple[int, int] = (25, 15)
    latent_iterations: tuple[int, int, int] = (6, 15, 20)
    view_blend: float = 0.02
    view_pruning: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        for name in ("prefer_margin", "window_margin", "zoom_margin", "view_blend"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                    math.isfinite(v) and v >= 0):
                raise ValueError(f"AutoConfig({name}={v!r}): a margin is a finite number "
                                 "≥ 0 (0 keeps whichever scores best)")
        for name in ("views", "stack_views"):
            given = getattr(self, name)
            views = tuple(given) if isinstance(given, (tuple, list)) else None
            if (not views or len(set(views)) != len(views)
                    or not all(isinstance(r, int) and 0 <= r <= 3 for r in views)):
                raise ValueError(f"AutoConfig({name}={given!r}): give distinct quarter "
                                 "turns from 0–3, e.g. (0,) for one view or (0, 1, 2, 3)")
            object.__setattr__(self, name, views)
        v = self.view_energies
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"AutoConfig(view_energies={v!r}): give a whole number ≥ 1 "
                             "of energies to choose the view on, or None for all")
        try:
            pruning = tuple((int(a), int(n)) for a, n in self.view_pruning)
        except (TypeError, ValueError):
            pruning = None
        if pruning is None or any(a < 1 or n < 1 for a, n in pruning):
            raise ValueError(f"AutoConfig(view_pruning={self.view_pruning!r}): give "
                             "(alternation ≥ 1, views kept ≥ 1) pairs, e.g. ((2, 2), (4, 1))")
        object.__setattr__(self, "view_pruning", pruning)
        for name, n in (("refine_iterations", 2), ("latent_iterations", 3)):
            v = getattr(self, name)
            if (not isinstance(v, (tuple, list)) or len(v) != n
                    or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 1
                               for i in v)):
                raise ValueError(f"AutoConfig({name}={v!r}): give {n} whole numbers ≥ 1")
            object.__setattr__(self, name, tuple(v))


#: The latent fit from the map or stack as it is, not its four quarter turns: the
#: dock's "one view (faster)" and ``napari-qpi extract --one-view``.
ONE_VIEW = AutoConfig(views=(0,), stack_views=(0,))
