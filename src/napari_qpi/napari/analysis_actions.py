"""The analysis chain on napari layers: each action reads a layer, calls the plain
functions of :mod:`napari_qpi.analysis`, and returns layer tuples and the numbers.

Nothing here draws or touches a viewer (the dock, :mod:`.analysis_widget`, does), so
every action is testable on layers alone. Each output layer records how it was made in
``metadata["qpi_analysis"] = {"source": name, "steps": [...]}``; for the q-space chain
the steps replay with :func:`napari_qpi.analysis.steps.replay` on the source's data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..analysis import (
    align_to_lattice,
    feenstra,
    fit_dispersion,
    fit_kernel_dispersion,
    high_symmetry_points,
    linecut,
    lockin_gain,
    lockin_polar,
    measure_lattice,
    q_steps,
    radial_profile,
    ring_wavevectors,
)
from ..analysis.lattice import Lattice
from ..analysis.steps import replay
from .layers import ROLE, geometry

if TYPE_CHECKING:  # pragma: no cover
    from napari.layers import Layer

    from .layers import LayerDataTuple

#: Where an action keeps its record in an output layer's metadata.
RECORD = "qpi_analysis"
#: Where :func:`lattice_action` keeps the lattice in its source layer's metadata.
LATTICE = "qpi_lattice"


def _pixel_size(layer: Layer) -> float | None:
    from .compute import pixel_size_of

    return pixel_size_of(layer)


def _energies(layer: Layer) -> np.ndarray:
    from .compute import energies_of

    e = energies_of(layer)
    return np.zeros(1) if e is None else e


def is_kernel(layer: Layer) -> bool:
    """An extracted or true kernel (decays in its window: no Hann window before FFT)."""
    from .plots_widget import kernel_candidates

    return any(k is layer for k in kernel_candidates([layer]))


def lattice_of(layer: Layer) -> Lattice | None:
    """The lattice :func:`lattice_action` stored on ``layer``, if any."""
    d = layer.metadata.get(LATTICE)
    if not d:
        return None
    return Lattice(np.asarray(d["reciprocal"]), np.asarray(d["real"]), d["unit"],
                   float(d["frame_angle"]))


def _record(layer: Layer, steps: list[dict]) -> dict:
    before = layer.metadata.get(RECORD, {}).get("steps", [])
    return {ROLE: "result", RECORD: {"source": layer.name, "steps": [*before, *steps]}}


def lattice_action(layer: Layer) -> tuple[Lattice | None, list[LayerDataTuple], str]:
    """Lattice vectors of a map layer: a Vectors layer of a1, a2 from the map's
    centre (real space), the lattice kept in ``layer.metadata["qpi_lattice"]``."""
    px = _pixel_size(layer)
    frame = float(layer.metadata.get("frame_angle_deg", 0.0) or 0.0)
    lat = measure_lattice(np.asarray(layer.data), px, frame_angle=frame)
    if lat is None:
        return None, [], f"{layer.name}: no lattice (fewer than two Bragg directions)"
    layer.metadata[LATTICE] = lat.as_dict()
    geom = geometry(layer)
    scale, translate = np.asarray(geom["scale"][-2:]), np.asarray(geom["translate"][-2:])
    centre = translate + scale * (np.asarray(layer.data.shape[-2:]) // 2)
    step = 1.0 if px is None else px
    vectors = np.stack([[centre, a * scale / step] for a in lat.real])  # world units
    unit = lat.unit
    text = (f"{lat.kind} lattice: a = {lat.constants[0]:.3f}, {lat.constants[1]:.3f} "
            f"{unit} at {lat.angles[0]:.1f}°, {lat.angles[1]:.1f}°; γ = {lat.gamma:.1f}°; "
            f"|b| = {lat.bragg_lengths[0]:.3f}, {lat.bragg_lengths[1]:.3f} {unit}⁻¹")
    kwargs = {"name": f"{layer.name} lattice", "edge_color": "cyan",
              "edge_width": 0.4 * float(scale[-1]), "vector_style": "arrow",
              "units": tuple(geom["units"][-2:]),  # scale 1: vectors in world units
              "axis_labels": tuple(geom["axis_labels"][-2:]),
              "metadata": {**_record(layer, [{"step": "lattice", "frame_angle": frame}]),
                           LATTICE: lat.as_dict()}}
    return lat, [(vectors, kwargs, "vectors")], text


def crop_action(layer: Layer, shapes: Layer) -> tuple[list[LayerDataTuple], str]:
    """The layer cut to the bounding box of the last shape drawn in a Shapes layer
    (world coordinates, so a rectangle drawn in Å over the map lands on its pixels)."""
    if not len(shapes.data):
        raise ValueError(f"{shapes.name!r} holds no shape: draw a rectangle on the map")
    vertices = np.asarray(shapes.data[-1], dtype=float)[:, -2:]
    world = vertices * np.asarray(shapes.scale[-2:]) + np.asarray(shapes.translate[-2:])
    scale, translate = np.asarray(layer.scale[-2:]), np.asarray(layer.translate[-2:])
    pixels = (world - translate) / scale
    size = np.asarray(layer.data.shape[-2:])
    lo = np.clip(np.floor(pixels.min(axis=0) + 0.5), 0, size).astype(int)
    hi = np.clip(np.floor(pixels.max(axis=0) + 0.5) + 1, 0, size).astype(int)
    if np.any(hi - lo < 8):
        raise ValueError(f"the rectangle covers {hi[0] - lo[0]} × {hi[1] - lo[1]} px of "
                         f"{layer.name!r}; draw one of at least 8 × 8 px over it")
    step = {"step": "crop", "y": [int(lo[0]), int(hi[0])], "x": [int(lo[1]), int(hi[1])]}
    out = replay(np.asarray(layer.data), [step]).astype(np.float32)
    geom = geometry(layer)
    shifted = np.asarray(geom["translate"], dtype=float)
    shifted[-2:] = translate + lo * scale
    meta = _record(layer, [step])
    for key in ("energies", "pixel_size"):
        if key in layer.metadata:
            meta[key] = layer.metadata[key]
    kwargs = {**geom, "translate": tuple(shifted), "name": f"{layer.name} crop",
              "metadata": meta}
    return [(out, kwargs, "image")], (f"{kwargs['name']}: rows {lo[0]}–{hi[0]}, "
                                      f"columns {lo[1]}–{hi[1]}")


def align_action(layer: Layer, lattice: Lattice) -> tuple[list[LayerDataTuple], str]:
    """The layer rotated so that the lattice's a1 lies along +x (same geometry)."""
    out = align_to_lattice(np.asarray(layer.data), lattice).astype(np.float32)
    a1 = lattice.real[0]
    turn = float(np.degrees(np.arctan2(-a1[0], a1[1])))
    meta = _record(layer, [{"step": "align", "angle": -turn}])
    if "energies" in layer.metadata:
        meta["energies"] = layer.metadata["energies"]
    kwargs = {**geometry(layer), "name": f"{layer.name} aligned", "metadata": meta}
    return [(out, kwargs, "image")], f"{kwargs['name']}: turned by {-turn:.2f}°"


def qspace_action(layer: Layer, order: int = 1, mirror: bool = False,
                  lattice: Lattice | None = None) -> tuple[list[LayerDataTuple], str]:
    """The layer's ``|FFT|`` (kernels unwindowed, maps Hann-windowed), symmetrised:
    one q-space image layer in Å⁻¹, q = 0 on the origin."""
    px = _pixel_size(layer)
    kernel = is_kernel(layer)
    axis = 0.0 if lattice is None else float(lattice.bragg_angles[0] - lattice.frame_angle)
    steps = [{"step": "qspace", "window": not kernel, "pad": 1}]
    if order > 1 or mirror:
        steps.append({"step": "symmetrize", "order": int(order), "mirror": bool(mirror),
                      "axis_angle": axis})
    data = replay(np.asarray(layer.data), steps).astype(np.float32)
    dq = q_steps(data.shape, px)
    geom = geometry(layer)
    unit = "1/angstrom" if px else "1/pixel"
    n = data.ndim
    ny, nx = data.shape[-2:]
    kwargs = {"scale": (*geom["scale"][:-2], dq[0], dq[1])[-n:],
              "translate": (*geom["translate"][:-2], -(ny // 2) * dq[0],
                            -(nx // 2) * dq[1])[-n:],
              "units": (*geom["units"][:-2], unit, unit)[-n:],
              "axis_labels": (*geom["axis_labels"][:-2], "qy", "qx")[-n:]}
    name = f"C{order}" if order > 1 else ""
    name += (" + mirror" if name else "mirror") if mirror else ""
    kwargs |= {"name": f"{layer.name} |FFT|" + (f" {name}" if name else ""),
               "colormap": "magma", "metadata": _record(layer, steps)}
    about = f" about {axis:.1f}°" if mirror else ""
    return [(data, kwargs, "image")], f"{kwargs['name']}: {len(steps)} step(s){about}"


def directions(lattice: Lattice | None) -> list[str]:
    """Cut directions offered: the lattice's Γ–X, Γ–M, …, a free angle, and the
    average over all directions."""
    points = [] if lattice is None else list(high_symmetry_points(lattice))
    return [f"Γ–{p}" for p in points] + ["radial", "angle"]


def eq_action(layer: Layer, direction: str = "angle", angle: float = 0.0,
              lattice: Lattice | None = None) -> dict:
    """The E(q) cut of a layer's ``|FFT|`` from Γ: along ``direction`` (``"Γ–X"``, …,
    to the zone boundary), at ``angle`` degrees (``"angle"``, to the inscribed circle),
    or averaged over all directions (``"radial"``).

    Returns
    -------
    dict
        ``q`` (Å⁻¹), ``energies`` (meV), ``cut`` (E, n_q), ``ring`` (E,) the maximum's
        |q| beyond the first q steps, ``steps`` (replayable), ``label``.
    """
    px = _pixel_size(layer)
    kernel = is_kernel(layer)
    pad = 4 if kernel else 1  # a kernel window's q step is coarse: sinc-interpolate
    first = {"step": "qspace", "window": not kernel, "pad": pad}
    spectrum = replay(np.asarray(layer.data), [first])
    dq = q_steps(spectrum.shape, px)
    if direction == "radial":  # the average over directions: an isotropic band's ring
        cut_step: dict = {"step": "radial", "q_step": dq.tolist()}
        q, cut = radial_profile(spectrum, q_step=dq)
    else:
        cut_step = {"step": "linecut", "q_step": dq.tolist(), "width": 1}
        if direction != "angle":
            if lattice is None:
                raise ValueError(f"direction {direction!r} needs the lattice: run Lattice "
                                 "vectors on the map first, or cut at an angle")
            # the lattice and the q step share units: Å⁻¹ with a pixel size, else rad/px
            end = high_symmetry_points(lattice)[direction.removeprefix("Γ–")]
            cut_step["end"] = np.asarray(end, dtype=float).tolist()
        else:
            cut_step["angle"] = float(angle)
        q, cut = linecut(spectrum, **{k: v for k, v in cut_step.items() if k != "step"})
    cut = cut[None] if cut.ndim == 1 else cut
    # beyond q = 0's peak (a map's mean and its window's leakage): a few q steps
    ring = ring_wavevectors(q, cut, q_min=2 * pad * float(np.max(dq)))
    return {"q": q, "energies": _energies(layer), "cut": cut, "ring": ring,
            "steps": [first, cut_step], "label": f"{layer.name}, {direction}"
            + (f" {angle:.0f}°" if direction == "angle" else "")}


def dispersion_action(layer: Layer, model: str = "parabolic", eq: dict | None = None
                      ) -> tuple[object, np.ndarray, np.ndarray, str]:
    """A band fitted to a kernel layer (Friedel fit of each slice) or, with ``eq``
    (:func:`eq_action`'s output), to the ring of its E(q) cut.

    Returns
    -------
    (Dispersion, energies, q, text)
    """
    energies = _energies(layer)
    if eq is None:
        px = _pixel_size(layer)
        if px is None:
            raise ValueError(f"{layer.name!r} has no pixel size: the band's units need Å")
        fit, q, _ = fit_kernel_dispersion(np.asarray(layer.data), energies, px, model=model)
    else:
        q = eq["ring"]
        fit = fit_dispersion(energies, q, model=model)
    p, e = fit.params, fit.errors
    if model == "parabolic":
        text = (f"m* = {p['m_eff']:.3f} ± {e['m_eff']:.3f} mₑ, "
                f"E₀ = {p['band_bottom']:.1f} ± {e['band_bottom']:.1f} meV")
    else:
        text = (f"k_F = {p['k_F']:.4f} ± {e['k_F']:.4f} Å⁻¹, ħv_F = {p['hbar_v_F']:.0f} ± "
                f"{e['hbar_v_F']:.0f} meV·Å")
    if "v_F" in p:
        text += f", v_F = {p['v_F'] / 1e5:.2f}×10⁵ m/s"
    return fit, energies, q, text


def feenstra_action(didv: Layer, current: Layer, broadening: float = 0.0
                    ) -> tuple[list[LayerDataTuple], str]:
    """(dI/dV)/(I/V) of a dI/dV stack layer with its current channel."""
    energies = _energies(didv)
    d, i = np.asarray(didv.data), np.asarray(current.data)
    gain = lockin_gain(d, i, energies)
    out = feenstra(d, i, energies, broadening=broadening).astype(np.float32)
    step = {"step": "feenstra", "current": current.name, "broadening": float(broadening),
            "lockin_gain": gain}
    kwargs = {**geometry(didv), "name": f"{didv.name} Feenstra",
              "metadata": {**_record(didv, [step]), "energies": energies.tolist()}}
    return [(out, kwargs, "image")], (
        f"{kwargs['name']}: (dI/dV)/(I/V), dimensionless; lock-in gain {gain:.3g} "
        f"({current.name} units per bias unit per {didv.name} unit, read from the sweep)")


def lockin_action(x: Layer, y: Layer) -> tuple[list[LayerDataTuple], str]:
    """Lock-in R and θ (degrees) layers from X and Y channel layers."""
    r, theta = lockin_polar(np.asarray(x.data), np.asarray(y.data))
    step = {"step": "lockin_polar", "y": y.name}
    meta = {**_record(x, [step])}
    if "energies" in x.metadata:
        meta["energies"] = x.metadata["energies"]
    geom = geometry(x)
    return [(r.astype(np.float32), {**geom, "name": f"{x.name} R", "metadata": meta},
             "image"),
            (theta.astype(np.float32), {**geom, "name": f"{x.name} θ", "metadata": meta,
                                        "colormap": "twilight"}, "image")], \
        f"R, θ from {x.name} and {y.name}; θ median {np.median(theta):.1f}°"
