"""``napari-qpi extract``: one file or a batch, one documented output file each."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

from ..extraction.registry import METHODS
from ..extraction.threads import ENV as THREADS_ENV
from ..io._common import check_file, exists
from .checks import (
    UsageError,
    check_device,
    check_folder,
    check_output,
    check_weights,
    drain_with_bar,
    int_at_least,
    odd_window,
    positive_float,
    print_warnings,
    quality_line,
    read_positions,
)

DEFAULT_METHOD = next(iter(METHODS))  # the registry's first entry: "auto"

#: What ``extract`` writes, shown in ``extract --help`` (also in docs/scripting.md).
OUTPUT_DOC = """\
output: one .npz per input, also readable by napari-qpi (load_stack gives the kernel):
  data         (E, k, k) kernel, scatterer on the centre pixel, with its fitted amplitude
               and sign per energy (observation units per unit scatterer strength)
  energies     (E,) meV;  pixel_size: Å per pixel (when known)
  activation   (H, W) scatterer map shared by every energy
  residual     (E, H, W) observation minus the fit
  uncertainty  (E, k, k) posterior spread (methods that give one)
  metadata     JSON: kind, source, method (the one that ran), requested_method,
               version, info (relative_residual, cv_residual, kernel_size, warnings...)
several inputs (or a quoted glob such as "maps/*.3ds"): --out names a folder and each
result is <folder>/<input name>_kernel.npz; a file that fails is reported, the rest run.
an existing output is replaced only with --overwrite; an input (or a link to it) never.
"""


def add_extract(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=".npz/.npy/.tif/.3ds/.sxm stack(s), or a quoted glob")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="output .npz for one input, a folder for several (default: "
                        "kernel.npz; the current folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file (an input is never overwritten)")
    # the old name, once needed to write over the input (now always refused)
    p.add_argument("--force", action="store_true", dest="overwrite", help=argparse.SUPPRESS)
    p.add_argument("--method", default=DEFAULT_METHOD, choices=list(METHODS),
                   help="extraction method (see below)")
    p.add_argument("--positions", type=Path, default=None, metavar="FILE",
                   help="scatterer pixels for guided mode (one input): a text file of "
                        "'row col' lines, or an .npz from napari-qpi simulate")
    p.add_argument("--channel", default=None,
                   help="channel of a .3ds/.sxm file (default: the first lock-in channel)")
    p.add_argument("--kernel-size", type=odd_window, default=None,
                   help="odd kernel window in px (default: chosen from the data)")
    p.add_argument("--pixel-size", type=positive_float, default=None,
                   help="Å per pixel (default: from the file, else unknown)")
    p.add_argument("--weights", default="default",
                   help="weight set of learned methods: default, seen, or a folder from "
                        "napari-qpi train")
    p.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:N, mps "
                                                   "(default: cpu)")
    p.add_argument("--threads", type=int_at_least(1), default=None, metavar="N",
                   help="CPU threads for torch (default: the cores idle when each "
                        "extraction starts; also NAPARI_QPI_THREADS)")
    p.add_argument("--n-types", type=n_types_arg, default=1, metavar="N",
                   help="defect species in the map, 1–4 or 'auto' (default 1): one kernel "
                        "and one scatterer map per species; the file gets 'kernels' "
                        "(T, E, k, k) and each scatterer's species in 'types'")
    p.add_argument("--one-view", action="store_true",
                   help="auto/refine: the latent fit from the map or stack as it is, not "
                        "its four quarter turns (about half the time on a stack; less "
                        "sure)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def n_types_arg(text: str):
    """``--n-types``: a whole number 1–4 or "auto"."""
    from ..extraction.species import check_types

    try:
        return check_types(text if text == "auto" else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 1–4 or 'auto'") from None


def _inputs(names: list[str]) -> list[Path]:
    """The input files, globs expanded (for shells that do not), all checked to exist."""
    paths: list[Path] = []
    for name in names:
        if any(c in name for c in "*?[") and not exists(Path(name)):
            matches = sorted(glob.glob(name))
            if not matches:
                raise UsageError(f"{name}: no file matches")
            paths += [Path(m) for m in matches]
        else:
            check_file(Path(name))  # missing, a directory, a FIFO: each its own message
            paths.append(Path(name))
    return paths


def _outputs(inputs: list[Path], out: Path | None, overwrite: bool) -> list[Path]:
    if len(inputs) == 1:
        return [check_output(out or Path("kernel.npz"), inputs=inputs, overwrite=overwrite,
                             suffix=".npz", example="kernel.npz")]
    folder = check_folder(out or Path("."))
    folder.mkdir(exist_ok=True)
    targets = [folder / f"{p.stem}_kernel.npz" for p in inputs]
    if len(set(targets)) < len(targets):
        raise UsageError("two inputs share a file name; run them into separate folders")
    return [check_output(t, inputs=inputs, overwrite=overwrite) for t in targets]


def run_extract(args) -> int:
    inputs = _inputs(args.inputs)
    if args.positions is not None and len(inputs) > 1:
        raise UsageError("--positions belongs to one map; give one input with it")
    outputs = _outputs(inputs, args.out, args.overwrite)
    check_device(args.device)
    if args.threads is not None:  # read by extraction.threads for every file
        os.environ[THREADS_ENV] = str(args.threads)
    if args.weights != "default":
        check_weights(args.weights)
    positions = None if args.positions is None else read_positions(args.positions)
    failed = 0
    for i, (src, out) in enumerate(zip(inputs, outputs), 1):
        if len(inputs) > 1:
            print(f"[{i}/{len(inputs)}] {src}", flush=True)
        try:
            _extract_one(src, out, positions, args)
        except ValueError as exc:  # one bad file of a batch: report it, run the rest
            if len(inputs) == 1:
                raise
            failed += 1
            print(f"napari-qpi: error: {exc}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(inputs)} files failed", file=sys.stderr)
    return 2 if failed else 0


def _extract_one(src: Path, out: Path, positions, args) -> None:
    import numpy as np

    from .. import __version__
    from ..extraction.config import ONE_VIEW
    from ..extraction.extract import iter_extract
    from ..io import load_stack

    stack = load_stack(src, channel=args.channel)
    config = ONE_VIEW if args.one_view else None
    res = drain_with_bar(iter_extract(
        stack, method=args.method, positions=positions, pixel_size=args.pixel_size,
        kernel_size=args.kernel_size, device=args.device, weights=args.weights,
        n_types=args.n_types, config=config), quiet=args.quiet)
    print_warnings(res.info)
    species = res.info.get("n_types", 1) > 1
    kernels = res.kernel if species else res.kernel[None]  # (T, E, k, k) or (T, k, k)
    if kernels.ndim == 3:
        kernels = kernels[:, None]
    acts = res.activation if species else res.activation[None]
    found = [(t, p) for t, a in enumerate(acts) for p in np.argwhere(a > 0)]
    # "data" (the first species' kernel stack) keeps the file readable as a QPI stack
    kernel = kernels[0]
    members = {"data": kernel.astype(np.float32), "energies": stack.energies,
               "activation": res.activation, "residual": res.residual,
               "positions": np.array([p for _, p in found], int).reshape(-1, 2),
               "types": np.array([t for t, _ in found], int)}
    if species:
        members["kernels"] = kernels.astype(np.float32)
    pixel = res.info.get("pixel_size", stack.pixel_size)
    if pixel is not None:
        members["pixel_size"] = np.float64(pixel)
    if res.uncertainty is not None:
        members["uncertainty"] = res.uncertainty
    meta = {"kind": "napari-qpi extraction", "source": str(src), "method": res.method,
            "requested_method": args.method, "one_view": bool(args.one_view),
            "version": __version__, "info": res.info}
    from ..io.stack import jsonable

    members["metadata"] = np.array(json.dumps(meta, default=jsonable))
    np.savez_compressed(out, **members)
    ran = res.method if res.method == args.method else f"{args.method} → {res.method}"
    print(f"{ran}: kernel {kernels.shape if species else kernel.shape} in "
          f"{res.info.get('seconds', float('nan')):.2f} s; "
          f"{quality_line(res.info)}")
    print(f"wrote {out}")
