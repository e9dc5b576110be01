"""Checks of the arguments of :func:`~napari_qpi.extraction.extract`.

:func:`~napari_qpi.extraction.iter_extract` calls :func:`validate`,
:func:`check_kernel_size`, :func:`check_pixel_size` and :func:`check_device` in that
order, before any work. Each raises one ``ValueError`` naming the argument and the fix.
Nothing here imports torch unless a GPU device is asked for.
"""

from __future__ import annotations

import importlib.util
import re
import sys

import numpy as np

from .._validation import check_int, check_positive

#: Smallest map side extract accepts: below it no kernel window carries information.
MIN_MAP_SIDE = 8


def validate(observation, positions, kernel_size=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Check the observation (and positions); return them ready for extraction.

    Parameters
    ----------
    observation : (Y, X) or (E, Y, X) array_like
        Real, finite, at least 8×8 px, not constant as a whole (a stack where only some
        slices are constant passes; the fit leaves those slices out).
    positions : (N, 2) array_like or None
        Scatterer pixels (row, col) inside the map.
    kernel_size : int, optional
        Checked by :func:`check_kernel_size` when given.

    Returns
    -------
    obs3 : (E, H, W) float64 ndarray
    positions : (N, 2) float64 ndarray or None

    Raises
    ------
    ValueError
        Naming the argument, what is wrong and what to pass instead.
    """
    obs3 = _observation(observation)
    h, w = obs3.shape[-2:]
    if kernel_size is not None:
        check_kernel_size(kernel_size, (h, w))
    return obs3, _positions(positions, (h, w))


def _observation(observation) -> np.ndarray:
    if observation is None:
        raise ValueError("observation is None; pass a (Y, X) map or an (E, Y, X) stack")
    if np.ma.isMaskedArray(observation) and np.ma.count_masked(observation):
        # the methods fit every pixel; masked values would enter the fit unseen
        raise ValueError(f"observation is a masked array with "
                         f"{np.ma.count_masked(observation)} masked pixels, which extraction "
                         "cannot leave out; crop them away, or fill them deliberately, e.g. "
                         "observation.filled(np.ma.median(observation))")
    if np.ma.isMaskedArray(observation):
        observation = np.ma.getdata(observation)
    try:
        arr = np.asarray(observation)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"observation must be a numeric (Y, X) or (E, Y, X) array ({exc})"
                         ) from None
    if np.iscomplexobj(arr):
        raise ValueError("observation is complex; pass a real map, e.g. observation.real "
                         "(in-phase lock-in) or np.abs(observation)")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"observation must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"observation must be a (Y, X) map or an (E, Y, X) stack; "
                         f"got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"observation is empty (shape {arr.shape}); pass at least one "
                         "energy slice of at least "
                         f"{MIN_MAP_SIDE}×{MIN_MAP_SIDE} px")
    h, w = arr.shape[-2:]
    if min(h, w) < MIN_MAP_SIDE:
        raise ValueError(f"observation map is {h}×{w} px, too small: extraction needs at "
                         f"least {MIN_MAP_SIDE}×{MIN_MAP_SIDE} px (check the axis order: "
                         "(E, Y, X))")
    obs = arr.astype(np.float64)
    finite = np.isfinite(obs)
    if not finite.all():
        raise ValueError(f"observation contains {obs.size - np.count_nonzero(finite)} NaN or "
                         "infinite values; crop or fill those pixels first")
    obs3 = obs[None] if obs.ndim == 2 else obs
    lo, hi = float(obs3.min()), float(obs3.max())
    if hi - lo <= 8 * np.finfo(float).eps * max(abs(lo), abs(hi)):
        raise ValueError(f"observation is constant (every pixel is {lo:g}); there is no "
                         "QPI signal to extract")
    return obs3


def _positions(positions, shape: tuple[int, int]) -> np.ndarray | None:
    if positions is None:
        return None
    h, w = shape
    try:
        pos = np.asarray(positions, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("positions must be an (N, 2) array of (row, col) pixel numbers"
                         ) from None
    if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0:
        hint = "; for one scatterer pass [[row, col]]" if pos.shape == (2,) else ""
        raise ValueError(f"positions must be an (N, 2) array of (row, col) pixels with "
                         f"N ≥ 1 (None for blind extraction), got shape {pos.shape}{hint}")
    # pixel indices: a position is rounded to its pixel, so 63.5 on a 64-px map is out
    if not np.all(np.isfinite(pos)) or np.any(pos < 0) or np.any(
            pos[:, 0] > h - 1) or np.any(pos[:, 1] > w - 1):
        raise ValueError(f"positions must lie inside the {h}×{w} map "
                         f"(rows 0..{h - 1}, cols 0..{w - 1})")
    return pos


def check_kernel_size(kernel_size, shape: tuple[int, int]) -> int | None:
    """``None`` (choose from the data) or an odd int ≥ 3 that fits a map of ``shape``."""
    if kernel_size is None:
        return None
    kernel_size = check_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0 or kernel_size < 3:
        raise ValueError(f"kernel_size={kernel_size} must be odd and ≥ 3 (the scatterer "
                         "sits on the centre pixel)")
    side = min(shape)
    if kernel_size > side:
        raise ValueError(f"observation is {shape[0]}×{shape[1]} px, smaller than the kernel "
                         f"window (kernel_size={kernel_size}); pass an odd kernel_size ≤ "
                         f"{side - (1 - side % 2)} or a larger map")
    return kernel_size


def check_pixel_size(pixel_size) -> float | None:
    """``None`` (unknown) or a finite pixel size > 0 in Å."""
    if pixel_size is None:
        return None
    try:
        return check_positive(pixel_size, "pixel_size")
    except ValueError as exc:
        raise ValueError(f"{exc}; pass the Å per pixel of the map, or None when unknown"
                         ) from None


_DEVICE = re.compile(r"(cpu|cuda|mps)(:\d+)?")


def check_device(device) -> str:
    """A torch device name: ``"cpu"`` (also for None), ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    ``None`` and ``"cpu"`` never import torch. A GPU name is checked against the torch
    installed: ``"cuda"`` on a CPU-only build is refused here, not deep inside torch.
    """
    if device is None:
        return "cpu"
    if isinstance(device, str):
        name = device.strip().lower()
    else:  # a torch.device
        name = str(device) if type(device).__name__ == "device" else ""
    if not _DEVICE.fullmatch(name):
        raise ValueError(f"device={device!r} is not a torch device; use 'cpu', 'cuda', "
                         "'cuda:N' or 'mps' (or None for the CPU)")
    if name.startswith("cpu"):
        if name not in ("cpu", "cpu:0"):  # torch accepts any index and ignores it
            raise ValueError(f"device={device!r}: the CPU is one device; use 'cpu' "
                             "(set its threads with NAPARI_QPI_THREADS)")
        return "cpu"
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        raise ValueError(f"device={name!r} needs torch, which is not installed; use "
                         "device='cpu'")
    import torch

    if name.startswith("mps"):
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={name!r}: this torch build has no MPS (Apple GPU) "
                             "support; use device='cpu'")
        return name
    if not torch.cuda.is_available():
        raise ValueError(f"device={name!r}: this torch build ({torch.__version__}) sees no "
                         "CUDA GPU; use device='cpu' or install a CUDA build of torch")
    index = int(name.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"device={name!r}: only {torch.cuda.device_count()} CUDA "
                         f"device(s) present; use 'cuda:0'")
    return name


#: Peak memory of an extraction, measured with ``benchmarks/bench_memory.py``
#: (docs/benchmarks.md) and rounded up by about 20 %: a fixed part (torch, the networks,
#: FFT plans), a part per pixel of the map (scatterer map, masks) and one per voxel of the
#: stack. Measured for ``auto``: 500 B per pixel of a single map, 110–140 B per further
#: voxel; for ``sbd``: 340 B per pixel, 285 B per voxel.
BASE_BYTES = {"learned": 550e6, "classical": 300e6}
PIXEL_BYTES = {"learned": 300.0, "classical": 100.0}
VOXEL_BYTES = {"learned": 300.0, "classical": 300.0}
#: Largest estimated peak memory extract starts: beyond it a laptop swaps for minutes.
MEMORY_LIMIT = 16e9


def estimate_memory(shape: tuple[int, ...], learned: bool) -> float:
    """Estimated peak memory (bytes) of extracting an ``(E, H, W)`` stack."""
    kind = "learned" if learned else "classical"
    pixels = float(np.prod(shape[-2:]))
    voxels = float(np.prod(shape))
    return BASE_BYTES[kind] + PIXEL_BYTES[kind] * pixels + VOXEL_BYTES[kind] * voxels


def check_size(shape: tuple[int, ...], spec) -> None:
    """Refuse, before any work, a stack whose extraction would exceed
    :data:`MEMORY_LIMIT`, with the estimate and the fix. Shapes that are not a map or a
    stack pass (:func:`validate` names what is wrong with them)."""
    if len(shape) not in (2, 3):
        return
    shape = (1, *shape) if len(shape) == 2 else tuple(shape)
    need = estimate_memory(shape, spec.learned)
    if need <= MEMORY_LIMIT:
        return
    e, h, w = shape
    raise ValueError(f"observation of {e}×{h}×{w} voxels would need about {need / 1e9:.0f} GB "
                     f"with method={spec.name!r} (limit {MEMORY_LIMIT / 1e9:.0f} GB); crop it "
                     "to the region of interest, bin it 2×2, or pass fewer energies")
