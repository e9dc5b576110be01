"""Every method, blind, on the instrument set (``napari-qpi benchmark --instrument``).

The set (``../shared/data/instrument``, see its README) is the foreign set's physics seen
through a real STM: oversampling, the lock-in's low-pass, scan-line offsets, 1/f noise,
drift, the lattice's corrugation and a background, a few per case. Each method runs as a
user would run it (blind, defaults, preprocessing ``"auto"``); the table gives medians per
artefact and per defect kind, and the scatterer map against the true scatterer count:
distinct scatterers found per true one, active pixels per true one, and the largest
active fraction; and the kernel window and the extracted pattern's reach against the
true kernel's extent (a window cut to a defect's core reads far below 1). Measure only —
never train or tune on it.
"""

from __future__ import annotations

import numpy as np

from .foreign import default_directory, iter_foreign

__all__ = ["ARTEFACTS", "instrument_table", "iter_instrument", "make_class_instrument_cases",
           "make_class_instrument_stacks", "make_instrument_cases", "make_instrument_stacks"]

ARTEFACTS = ("oversampled", "lockin", "lines", "pink", "drift", "lattice", "background")
COLUMNS = ("tail_similarity", "aligned_tail_similarity", "found_per_true", "active_per_true",
           "active_fraction", "window_ratio", "extent_ratio", "relative_residual",
           "cv_residual")
HEAD = {"tail_similarity": "tail", "aligned_tail_similarity": "tail, aligned",
        "found_per_true": "found / true", "active_per_true": "active px / true",
        "active_fraction": "active %", "window_ratio": "window / true extent",
        "extent_ratio": "extent / true", "relative_residual": "resid",
        "cv_residual": "cv-resid"}


def iter_instrument(methods, directory=None, **kwargs):
    """:func:`~.foreign.iter_foreign` on the instrument set (default
    ``../shared/data/instrument``)."""
    directory = default_directory("instrument") if directory is None else directory
    if directory is None:
        raise ValueError("no instrument set found at ../shared/data/instrument; pass its "
                         "folder")
    return iter_foreign(methods, directory, **kwargs)


def _row(label: str, rs: list[dict]) -> str:
    cells = [label, str(len(rs))]
    for m in COLUMNS:
        v = np.array([r.get(m, np.nan) for r in rs], float)
        if m == "active_fraction":
            cells.append(f"{100 * np.nanmedian(v):.1f} (max {100 * np.nanmax(v):.1f})")
        elif m.endswith("per_true"):
            cells.append(f"{np.nanmedian(v):.1f}")
        elif m.endswith("_ratio"):  # the median and the farthest from 1
            far = v[np.nanargmax(np.abs(np.log(v)))] if np.isfinite(v).any() else np.nan
            cells.append(f"{np.nanmedian(v):.2f} (farthest {far:.2f})")
        else:
            cells.append(f"{np.nanmedian(v):.3f}")
    cells.append(f"{np.median([r['seconds'] for r in rs]):.1f}")
    return "| " + " | ".join(cells) + " |"


def instrument_table(records: list[dict]) -> str:
    """Markdown: per set (maps, stacks) and method, medians overall, per artefact and
    per defect kind."""
    out = []
    head = ["cases", "n", *(HEAD[m] for m in COLUMNS), "s/case"]
    for name in ("maps", "stacks"):
        for method in dict.fromkeys(r["method"] for r in records):
            rs = [r for r in records if r["set"] == name and r["method"] == method]
            if not rs:
                continue
            lines = [f"### Instrument {name}: {method} ({len(rs)} cases, blind)", "",
                     "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                     _row("all", rs)]
            for a in ARTEFACTS:
                sub = [r for r in rs if a in r.get("artefacts", ())]
                if sub:
                    lines.append(_row(a, sub))
            for d in dict.fromkeys(r["defect"] for r in rs):
                lines.append(_row(d, [r for r in rs if r["defect"] == d]))
            out += [*lines, ""]
    return "\n".join(out).rstrip()


def make_instrument_cases(n: int = 12, *, seed: int = 0, size: int = 128) -> list:
    """``n`` maps of the project's own simulator seen through the instrument
    (:func:`~napari_qpi.physics.instrument.through_instrument`): kernels from the
    evaluation stream (never drawn in training), 0–7 artefacts each (each artefact is kept
    with odds drawn anew for it; 48 draws: none on 3, 1–3 on 32, 4–6 on 13), SNR 20 / 5 / 2, an
    oversampled map interpolated with either convention (``phase`` 0 or 0.5) —
    the draws on which the project chooses its instrument rules (the instrument set
    measures them).

    Returns
    -------
    list of :class:`~.foreign.ForeignCase`
        With ``set="maps"``, ``family``, ``defect`` ("point") and ``artefacts``.
    """
    from ..physics.instrument import ARTEFACTS as ARTS
    from ..physics.instrument import through_instrument
    from ..physics.sampling import EVAL_STREAM, SPLITS, sample_spec, simulate_spec
    from .foreign import ForeignCase

    rng = np.random.default_rng(EVAL_STREAM + 7919 + seed)
    fams = SPLITS["seen"] + SPLITS["unseen"]
    cases = []
    for i in range(int(n)):
        fam = fams[i % len(fams)]
        spec = sample_spec(fam, rng)
        # the choice is drawn anew for every artefact (the comprehension's condition):
        # 0–7 per map, not the 1–4 it reads as; kept, since every rule chosen on
        # these draws was chosen on them
        arts = tuple(a for a in ARTS if a in rng.choice(ARTS, int(rng.integers(1, 5)),
                                                        replace=False))
        if "drift" in arts and "lattice" not in arts:
            arts = (*arts, "lattice")
        half = "oversampled" in arts
        snr = float((20.0, 5.0, 2.0)[i % 3])
        sim = simulate_spec(spec, shape=(size // 2, size // 2) if half else (size, size),
                            n_scatterers=int(rng.integers(8, 41)) // (2 if half else 1),
                            kernel_size=33 if half else 65, snr=snr,
                            seed=int(rng.integers(2**31)))
        # the interpolation's convention from its own stream, so the other draws stay
        # those of earlier runs: half the oversampled maps put scatterers between pixels
        phase = 0.5 * int(np.random.default_rng([seed, i]).integers(2))
        m = through_instrument(sim.observation, sim.kernel, sim.positions, arts,
                               rng=int(rng.integers(2**31)), phase=phase)
        cases.append(ForeignCase("maps", i, fam, "point", snr, m.observation[0],
                                 m.kernel[0], m.positions, arts))
    return cases


def make_instrument_stacks(n: int = 6, *, seed: int = 0, size: int = 128,
                           n_energies: int = 8) -> list:
    """``n`` eight-energy stacks of the project's own simulator seen through the
    instrument, as a grid is measured: the lock-in and the lattice always, one to three
    other artefacts, point defects, SNR 20 / 5 / 2; energies a quarter of the band's
    energy scale around the drawn one. The draws on which stack rules are chosen (the
    instrument set's stacks measure them).

    Returns
    -------
    list of :class:`~.foreign.ForeignCase`
        With ``set="stacks"``, (E, H, W) observations and (E, k, k) kernels.
    """
    from ..physics.instrument import ARTEFACTS as ARTS
    from ..physics.instrument import through_instrument
    from ..physics.sampling import EVAL_STREAM, SPLITS, sample_spec, simulate_spec
    from .foreign import ForeignCase

    rng = np.random.default_rng(EVAL_STREAM + 6007 + seed)
    fams = SPLITS["seen"] + SPLITS["unseen"]
    extra = [a for a in ARTS if a not in ("lockin", "lattice")]
    cases = []
    for i in range(int(n)):
        fam = fams[i % len(fams)]
        spec = sample_spec(fam, rng)
        drawn = {"lockin", "lattice", *rng.choice(extra, int(rng.integers(1, 4)), replace=False)}
        arts = tuple(a for a in ARTS if a in drawn)
        half = "oversampled" in arts
        snr = float((20.0, 5.0, 2.0)[i % 3])
        energies = spec.energy + np.linspace(-0.12, 0.12, n_energies) * spec.band.energy_scale()
        sim = simulate_spec(spec, shape=(size // 2, size // 2) if half else (size, size),
                            n_scatterers=int(rng.integers(10, 41)) // (2 if half else 1),
                            kernel_size=33 if half else 65, snr=snr, energies=energies,
                            seed=int(rng.integers(2**31)))
        phase = 0.5 * int(rng.integers(2))
        m = through_instrument(sim.observation, sim.kernel, sim.positions, arts,
                               rng=int(rng.integers(2**31)), phase=phase)
        cases.append(ForeignCase("stacks", i, fam, "point", snr, m.observation, m.kernel,
                                 m.positions, arts))
    return cases


def make_class_instrument_cases(n: int = 24, *, seed: int = 0, size: int = 128) -> list:
    """``n`` maps of the named physics classes (:mod:`~napari_qpi.physics.classes`: rotated
    lattices, multi-site defects, superconductors, …) seen through the instrument: a
    harder set of own draws than :func:`make_instrument_cases`, whose kernels are the
    simpler families the networks train on most.

    One to three artefacts each, from every kind but ``oversampled`` (a class's kernel
    is drawn in the map's own pixels); 8–40 scatterers of amplitude 0.6–1.4; SNR 20 / 5 /
    2. The true kernel is centred on the defect's first site, as the validation sets'
    are; ``defect`` is the class's defect kind.

    Returns
    -------
    list of :class:`~.foreign.ForeignCase`
    """
    from ..physics.classes import CLASS_EVAL_STREAM, sample_classes
    from ..physics.instrument import ARTEFACTS as ARTS
    from ..physics.instrument import through_instrument
    from ..physics.noise import add_noise
    from ..physics.scatter import place
    from .foreign import ForeignCase

    rng = np.random.default_rng(CLASS_EVAL_STREAM + 31337 + seed)
    kinds = [a for a in ARTS if a != "oversampled"]
    cases = []
    for i, spec in enumerate(sample_classes("all", int(n), rng)):
        grid = spec.grid(256)
        h = 32  # the 65-px truth window, first site on its centre pixel
        idx = np.r_[-h:h + 1]
        kernel = grid[idx[:, None], idx[None, :]]
        scale = max(float(np.linalg.norm(kernel)), 1e-300)
        count = int(rng.integers(8, 41))
        pos = rng.integers(0, size, (count, 2))
        x = np.zeros((1, size, size))
        x[0, pos[:, 0], pos[:, 1]] = rng.uniform(0.6, 1.4, count)
        snr = float((20.0, 5.0, 2.0)[i % 3])
        y = add_noise(place(grid[None, None] / scale, x, (size, size)), snr, rng=rng)
        drawn = set(rng.choice(kinds, int(rng.integers(1, 4)), replace=False))
        if "drift" in drawn:  # the lattice is the drift correction's reference
            drawn.add("lattice")
        arts = tuple(a for a in ARTS if a in drawn)
        m = through_instrument(y, kernel[None] / scale, pos, arts,
                               rng=int(rng.integers(2**31)))
        cases.append(ForeignCase("maps", i, spec.name, spec.name.split("/")[-1], snr,
                                 m.observation[0], m.kernel[0], m.positions, arts))
    return cases


def make_class_instrument_stacks(n: int = 12, *, seed: int = 0, size: int = 128,
                                 n_energies: int = 8) -> list:
    """``n`` energy stacks of the named physics classes' point defects seen through the
    instrument: the stacks of :func:`make_instrument_stacks` with the harder kernels of
    :func:`make_class_instrument_cases` (rotated and oblique lattices, two bands,
    superconductors), dispersing with energy.

    Each stack: one class's point defect at ``n_energies`` energies around the drawn
    one (a quarter of the band's energy scale, or about the gap for a superconductor), one
    set of 10–40 scatterers of amplitude 0.6–1.4, the white noise at SNR 20 / 5 / 2 per
    slice, then the lock-in and the lattice always and one to two more artefacts (not
    ``oversampled``: a class's kernel is drawn in the map's own pixels). The kernels keep
    their relative amplitudes across energies; the true kernel is centred on the defect.

    Returns
    -------
    list of :class:`~.foreign.ForeignCase`
        With ``set="stacks"``, (E, H, W) observations and (E, k, k) kernels.
    """
    from dataclasses import replace

    from ..physics.classes import CLASS_EVAL_STREAM, CLASSES, sample_class
    from ..physics.instrument import ARTEFACTS as ARTS
    from ..physics.instrument import through_instrument
    from ..physics.noise import add_noise
    from ..physics.scatter import place
    from .foreign import ForeignCase

    rng = np.random.default_rng(CLASS_EVAL_STREAM + 7919 + seed)
    names = [c for c in CLASSES if c.endswith("/point")]
    extra = [a for a in ARTS if a not in ("oversampled", "lockin", "lattice")]
    order = [names[int(i)] for _ in range(int(n) // len(names) + 1)
             for i in rng.permutation(len(names))][:int(n)]
    cases = []
    for i, name in enumerate(order):
        spec = sample_class(name, rng)
        sc = name.split("/")[1] in ("d-wave", "s+-")
        # the energy range a grid spans: a quarter of the band's scale, or about the gap
        span = 4.0 * spec.model.extra["gap"] if sc else spec.model.energy_scale()
        energies = spec.energy + np.linspace(-0.12, 0.12, n_energies) * span
        grids = np.stack([replace(spec, energy=float(e)).grid(256) for e in energies])
        idx = np.r_[-32:33]  # the 65-px truth window, the defect on its centre pixel
        kernel = grids[:, idx[:, None], idx[None, :]]
        scale = max(float(np.linalg.norm(kernel) / np.sqrt(n_energies)), 1e-300)
        count = int(rng.integers(10, 41))
        pos = rng.integers(0, size, (count, 2))
        x = np.zeros((1, size, size))
        x[0, pos[:, 0], pos[:, 1]] = rng.uniform(0.6, 1.4, count)
        snr = float((20.0, 5.0, 2.0)[i % 3])
        y = add_noise(place(grids[None] / scale, x, (size, size)), snr, rng=rng)
        drawn = {"lockin", "lattice", *rng.choice(extra, int(rng.integers(1, 3)),
                                                  replace=False)}
        arts = tuple(a for a in ARTS if a in drawn)
        m = through_instrument(y, kernel / scale, pos, arts, rng=int(rng.integers(2**31)))
        cases.append(ForeignCase("stacks", i, name, "point", snr, m.observation, m.kernel,
                                 m.positions, arts))
    return cases
