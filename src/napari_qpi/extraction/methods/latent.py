"""The learned decoder as a prior: fit the latent code (and a small free correction) to the map.

One of refine's candidates. Starting from the two-stage latent — blind, first re-read with
the scatterers its own kernel marks (self-guidance) — alternate: Adam steps on the latent
through the frozen stage-1 decoder plus a free correction δ, against the data with the
shared activation fixed; the activation by the one FISTA with the kernel fixed. The
decoder keeps the kernel physical; δ lets the map correct it, penalised inside the
decoder's window and kept small outside. The kernel lives on a working window about twice
the decoder's: real tails reach beyond any output window, and a model that cannot hold
them pushes their signal into the kernel's centre.

Only the pixels of ``mask`` enter the fit, so its cross-validated residual is honest.

The fit starts from one view of the network, and the four quarter-turn views of a map give
different starts and different fits; :func:`best_view_fit` runs all four and keeps the one
that predicts held-out pixels best (docs/extraction.md §6).
"""

from __future__ import annotations

import numpy as np
import torch

from ...progress import Progress
from ..fista import support_mask
from ..operator import ConvOperator
from ..registry import MethodResult, Problem
from ..scale import center_window
from ..selfguide import activation as _activation
from ..selfguide import energy_signs, polarity, self_guide
from .adam import Adam
from .views import energy_subset, turn

PRIOR_WEIGHT = 1e-3  # ‖z − z₀‖² per latent dimension
INNER_WEIGHT = 1.0  # ‖δ‖² inside the decoder window, relative to the data term
OUTER_WEIGHT = 0.05  # ‖δ‖² outside it
LABEL = "refine: latent fit against the map"


#: Kernels (views × energies) decoded together in one batch of the joint fit: on 2 CPU
#: cores four 128² views cost 2× one, not 4×; a long stack goes a view at a time, so
#: the decoder's autograd memory stays that of the fit of one view.
BATCH_KERNELS = 32


def best_view_fit(problem: Problem, mask=None):
    """The latent fit started from each quarter-turn view of the network; the one whose
    kernel (turned back) predicts the pixels outside ``mask`` best.

    The views are the quarter turns of the map the network and the fit's start run on,
    ``problem.config.views`` for one map (on fresh draws of our classes the best of four
    views by CV residual raised auto's paired mean tail similarity by +0.027 over one)
    and ``problem.config.stack_views`` for an energy stack (see :class:`~..AutoConfig`).
    The views' fits are independent and run together (:func:`fit_views`). A stack of
    more than ``config.view_energies`` energies chooses its view on that many of them,
    evenly spaced (:func:`energy_subset`), and fits the whole stack from that view only;
    that fit's held-out residual is then NaN, since ``auto`` scores it on those energies
    (:func:`~.refine.judging`).

    Returns ``(MethodResult, cv_residual)`` or None (no view could be fitted). The result's
    ``info["latent_view"]`` is its view: its latent decodes to the kernel turned by that
    many quarter turns.
    """
    cfg = problem.config
    e = len(problem.observation)
    views = cfg.views if e == 1 else cfg.stack_views
    long = e > 1 and cfg.view_energies is not None and e > cfg.view_energies
    if long and len(views) > 1:
        sub = energy_subset(problem, cfg.view_energies)
        chosen = yield from _best_of(sub, views, mask, label=f"refine: choosing the latent "
                                     f"fit's view on {len(sub.observation)} of {e} energies")
        if chosen is not None:
            views = (chosen[0].info["latent_view"],)
    # a long stack's one view is scored by auto on the energies it judges on
    # (refine.judging), not here
    return (yield from _best_of(problem, views, mask, score=not long))


def _best_of(problem: Problem, views, mask, label: str = LABEL, score: bool = True):
    """:func:`best_view_fit` over the given views (``label``: the fit's progress).
    ``score=False`` with one view: its held-out residual is not computed (NaN)."""
    from ..quality import problem_cv
    from .learned import run_network

    starts = {}
    for r in views:
        turned = turn(problem, r)
        # the fit needs the start's kernel and latent, not its uncertainty
        starts[r] = yield from run_network(turned, "two-stage", rotations=1,
                                           uncertainty=False)
    fits = yield from fit_views(problem, starts, mask, label=label)
    if not fits:
        return None
    if not score and len(fits) == 1:
        (r, fit), = fits.items()
        return MethodResult(fit.kernel, None, None, fit.latent, {"latent_view": r}), np.nan
    cvs = {}
    for i, (r, fit) in enumerate(fits.items()):
        # seconds each on a large grid: one event per view
        yield Progress("scoring the latent fit's views on held-out pixels", i, len(fits))
        cvs[r] = problem_cv(problem, fit.kernel)
    r = min(cvs, key=cvs.get)
    kernel, cv = fits[r].kernel, cvs[r]
    tie = 1 + problem.config.view_blend
    near = [v for v in cvs if cvs[v] <= cvs[r] * tie]
    if len(near) > 1:
        # views that predict held-out pixels alike are a coin toss between kernels that
        # can differ by 0.3 in tail similarity: their mean, kept where it ties with them
        # too (AutoConfig.view_blend)
        blend = blend_kernels([fits[v].kernel for v in near], fits[r].kernel)
        blend_cv = problem_cv(problem, blend)
        if blend_cv <= cv * tie:
            kernel, cv = blend, blend_cv
    return MethodResult(kernel, None, None, fits[r].latent, {"latent_view": r}), cv


def blend_kernels(kernels: list, like: np.ndarray) -> np.ndarray:
    """The mean of unit-norm ``kernels``, at the norm of ``like``."""
    unit = [np.asarray(k, float) / max(float(np.linalg.norm(k)), 1e-300) for k in kernels]
    return float(np.linalg.norm(like)) * np.mean(unit, axis=0)


def latent_fit(problem: Problem, start: MethodResult, mask=None, *, reread: bool = True,
               label: str = LABEL):
    """Refine ``start`` (a two-stage result on the problem's pixels) through the decoder.

    ``start`` must be one view of the network (``rotations=1``): the fit begins at its
    latent, whose decoding is its kernel. (The rotation-averaged kernel of the two-stage
    method is the decoding of no latent; and on our held-out class draws starting from
    it lowered auto's median 0.743 → 0.719.)

    Blind (no positions) and with ``reread``, the start is first re-read by the guided
    encoder at the scatterers its own kernel marks (self-guidance).

    Returns a MethodResult with the fitted latent (the kernel is its decoding plus the
    correction δ; no uncertainty, which belonged to the start), or None when the start has
    no latent at the map's own scale or the map is too small for the working window.
    """
    fits = yield from fit_views(problem, {0: start}, mask, reread=reread, label=label)
    return fits.get(0)


def fit_views(problem: Problem, starts: dict, mask=None, *, reread: bool = True,
              label: str = LABEL):
    """The latent fit of each view's start, all views in one joint optimisation.

    ``starts`` maps a quarter turn ``r`` to the network's result on the map turned by
    ``r``. Each view's start (self-guidance, polarity, the decoder's anchor, the first
    activation) is read on its turned map; the fit then runs on the map as it is, each
    view's decoding turned back: convolution commutes with a quarter turn, and Adam's
    steps are per element, so the joint fit takes each view's own steps (a sum of
    independent losses) while the decoder runs once per step for all of them.

    Returns a dict r → MethodResult (kernel on the map as it is; the latent decodes to it
    turned by r); views without a fit (see :func:`latent_fit`) are left out.
    """
    y = problem.observation
    prepared = {}
    for r, start in starts.items():
        view = yield from _view_start(turn(problem, r), start, mask, r, reread, label)
        if view is not None:
            prepared[r] = view
    if not prepared:
        return {}
    e = y.shape[0]
    per = max(1, BATCH_KERNELS // e)
    order = list(prepared)
    out = {}
    for i in range(0, len(order), per):
        group = {r: prepared[r] for r in order[i:i + per]}
        out.update((yield from _joint_fit(problem, group, mask, label)))
    return out


def _view_start(turned: Problem, start: MethodResult, mask, r: int, reread: bool,
                label: str):
    """One view's start on its turned map: dict of latent, anchor, sign and activation
    (turned back onto the map as it is), or None."""
    from ...models.inference import predict
    from ...models.weights import cached_set

    if start.latent is None or start.zoom != 1.0:  # a latent of the map resampled
        return None
    vae = cached_set(turned.weights, "cpu")[1]["vae"]
    k_model = vae.cfg.kernel_size  # the decoder's output window
    y = turned.observation
    h, w = y.shape[-2:]
    ww = min(2 * k_model - 1, (min(h, w) // 2) * 2 + 1)
    if ww < k_model:
        return None
    tmask = None if mask is None else np.ascontiguousarray(np.rot90(mask, r))
    support = None if turned.positions is None else support_mask(turned.positions, (h, w))
    kernel, latent = np.asarray(start.kernel, float), start.latent
    outer, inner = turned.config.latent_iterations[:2]
    if turned.positions is None and reread:
        guide = self_guide(y, kernel, tmask)
        yield Progress(label, 0, outer * inner)
        if guide is not None:
            kernel, _, latent = yield from predict(y, method="two-stage", guide=guide,
                                                   device="cpu", weights=turned.weights,
                                                   rotations=1, uncertainty=False)
            yield Progress(label, 0, outer * inner)
    # the data's polarity: the strongest matched-filter responses are scatterers (X ≥ 0);
    # then each energy's own sign, since the decoder draws every slice with a positive
    # core while a defect's pattern can change sign with energy
    kernel = polarity(y, kernel) * kernel
    kernel = energy_signs(y, kernel, tmask) * kernel
    # an anchored decoder reads each slice's power kernel (the data's magnitude)
    anchor = vae.anchor_of(torch.from_numpy(y).float())
    act = _activation(y, center_window(kernel, k_model), support, tmask, num_iter=80)
    z0 = torch.from_numpy(np.asarray(latent)).float()
    with torch.no_grad():
        dec = vae.decode(z0, anchor).numpy()
    # per energy: the decoding's sign against the start's
    sign = np.where((dec * center_window(kernel, k_model)).sum((-2, -1)) >= 0, 1.0, -1.0)
    return {"z0": z0, "anchor": anchor, "sign": sign, "ww": ww,
            "act": np.ascontiguousarray(np.rot90(act, -r))}


def _joint_fit(problem: Problem, views: dict, mask, label: str):
    """Adam on the views' latents and corrections together, activations by FISTA per
    view, on the map as it is (see :func:`fit_views`)."""
    from ...models.weights import cached_set

    y = problem.observation
    e, h, w = y.shape
    k = problem.kernel_size
    n_outer, n_inner, n_fista = problem.config.latent_iterations
    steps = n_outer * n_inner
    support = None if problem.positions is None else support_mask(problem.positions, (h, w))
    turns = list(views)
    nv = len(turns)
    ww = views[turns[0]]["ww"]
    vae = cached_set(problem.weights, "cpu")[1]["vae"]
    k_model = vae.cfg.kernel_size
    yt = torch.from_numpy(y).float()
    mt = torch.ones(h, w) if mask is None else torch.from_numpy(np.asarray(mask)).float()
    ynorm = float(((yt * mt) ** 2).sum())
    anchor = torch.cat([views[r]["anchor"] for r in turns])
    z0 = torch.stack([views[r]["z0"] for r in turns])  # (V, E, d)
    sign = torch.from_numpy(np.stack([views[r]["sign"] for r in turns])).float()[..., None, None]
    acts = [views[r]["act"] for r in turns]
    z = z0.clone().requires_grad_(True)
    delta = torch.zeros(nv, e, ww, ww, requires_grad=True)
    pad = (ww - k_model) // 2
    rr = torch.arange(ww) - ww // 2
    inner = ((rr[:, None].abs() <= k_model // 2) & (rr[None, :].abs() <= k_model // 2)).float()
    opt = Adam([z, delta], lr=0.02)
    geometry = ConvOperator(torch.zeros(e, ww, ww), (h, w))

    decode = vae.decoder_on(anchor)

    def work_kernel() -> torch.Tensor:
        dec = decode(z.reshape(nv * e, -1)).reshape(nv, e, k_model, k_model)
        dec = torch.stack([torch.rot90(dec[i], -r, (-2, -1)) for i, r in enumerate(turns)])
        return torch.nn.functional.pad(sign * dec, (pad, pad, pad, pad)) + delta

    prune = dict(problem.config.view_pruning) if mask is not None else {}
    kw = None
    for outer in range(n_outer):
        if outer in prune and nv > prune[outer]:
            # the views that predict held-out pixels worst so far go; the rest keep
            # their latents, corrections and Adam's moments
            keep = _leading_views(y, kw, acts, mask, prune[outer])
            turns, nv, acts = [turns[i] for i in keep], len(keep), [acts[i] for i in keep]
            opt = opt.kept(keep)
            z, delta = opt.params
            z0, sign = z0[keep], sign[keep]
            anchor = anchor.reshape(-1, e, *anchor.shape[1:])[keep].flatten(0, 1)
            decode = vae.decoder_on(anchor)
        x = torch.from_numpy(np.stack(acts)).float()
        for i in range(n_inner):
            # an event per step: on a stack one alternation takes over a second, and
            # Cancel takes effect at the next event
            yield Progress(label, outer * n_inner + i, steps)
            fit = geometry.kernel_forward(work_kernel(), x)
            # the sum of each view's loss (each view's own data term and penalties)
            loss = (0.5 * (((fit - yt) * mt) ** 2).sum() / ynorm
                    + PRIOR_WEIGHT * ((z - z0) ** 2).mean((-2, -1)).sum()
                    + INNER_WEIGHT * ((delta * inner) ** 2).sum()
                    + OUTER_WEIGHT * ((delta * (1 - inner)) ** 2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            kw = work_kernel().double().numpy()
        kw = kw / (np.sqrt((kw**2).sum((-3, -2, -1), keepdims=True)) / np.sqrt(e) + 1e-12)
        a = np.stack(acts)
        acts = list(_activation(y, kw, support, mask, num_iter=n_fista,
                                x0=a * (np.abs(a).max((-2, -1), keepdims=True) > 0)))
    yield Progress(label, steps, steps)
    with torch.no_grad():
        lat = z.numpy().copy()
    return {r: MethodResult(center_window(kw[i], k), None, None, lat[i])
            for i, r in enumerate(turns)}


def _leading_views(y: np.ndarray, kernels: np.ndarray, acts: list, mask: np.ndarray,
                   n: int) -> list[int]:
    """Indices of the ``n`` views whose kernels and activations (fitted on the pixels of
    ``mask``) leave the smallest residual on the held-out pixels, each slice's offset
    taken from the fitted pixels."""
    from ..quality import heldout_misfit

    pred = ConvOperator(kernels.astype(np.float32), y.shape[-2:]).forward(np.stack(acts))
    score = (heldout_misfit(y, pred, np.asarray(mask, float)) ** 2).sum((-3, -2, -1))
    return sorted(np.argsort(score, kind="stable")[:n].tolist())
