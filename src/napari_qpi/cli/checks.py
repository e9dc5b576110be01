"""Checks of command-line arguments, run before any work, and the progress bar.

Each check raises :class:`UsageError` with one line naming the option and the fix.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from ..extraction.registry import METHODS


class UsageError(Exception):
    """A problem with what the user asked for: one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors in the command's own voice."""

    def error(self, message: str):
        """Raise :class:`UsageError` instead of printing usage and exiting."""
        raise UsageError(f"{message} (see {self.prog} --help)")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """The default after each option that has one; descriptions and epilogs keep their
    line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if (d is not None and d is not False and d != argparse.SUPPRESS
                and "default" not in text and action.option_strings):
            text += " (default: %(default)s)"
        return text


def methods_text() -> str:
    """The registry's methods, one wrapped paragraph each, for help texts."""
    lines = [textwrap.fill(m.help(), width=88, initial_indent="  ",
                           subsequent_indent="    ") for m in METHODS.values()]
    return "methods:\n" + "\n".join(lines)


def int_at_least(low: int, high: int | None = None, why: str = ""):
    """An argparse type: an integer ≥ ``low`` (and ≤ ``high``, ``why`` saying why)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be ≤ {high}, got {value}{why}")
        return value
    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1], got {text}")
    return value


def odd_window(text: str) -> int:
    value = int_at_least(3)(text)
    if value % 2 == 0:
        raise argparse.ArgumentTypeError(f"must be odd (scatterer on the centre pixel), "
                                         f"got {value}")
    return value


def method_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one method")
    for name in names:
        if name not in METHODS:
            raise argparse.ArgumentTypeError(f"{name!r} is unknown; choose from "
                                             f"{', '.join(METHODS)}")
    return names


def check_device(device: str | None) -> None:
    """Refuse a torch device this machine cannot use, before any work (the library's
    check, worded for the command line)."""
    from ..extraction.validate import check_device as check

    try:
        check(device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def check_weights(weights: str, option: str = "--weights") -> None:
    """A shipped weight set's name or a folder written by ``napari-qpi train``, every
    file of it read and checked now (a damaged set raises QPIFormatError naming the
    file), so it fails before any long work."""
    from ..models.warm import load_source
    from ..models.weights import SHIPPED, resolve

    try:
        resolve(weights)
    except ValueError:
        raise UsageError(f"{option} {weights!r} is neither a shipped set "
                         f"({', '.join(SHIPPED)}) nor a folder from napari-qpi train") from None
    load_source(weights)  # reads every file (~0.1 s) so a damaged one fails now


def check_output(path: Path, *, inputs=(), overwrite: bool = False, suffix: str | None = None,
                 option: str = "--out", example: str = "result.npz") -> Path:
    """The file to write, checked before any work: not a folder, never an input (nor a
    hard or symbolic link to one), an existing file only with ``overwrite``, and in a
    writable folder. ``suffix`` (e.g. ``".npz"``) is put on the name after the folder
    check, so ``--out DIR`` is refused rather than written as ``DIR.npz``; ``example``
    is the file name the message suggests inside such a folder."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} must be a file path, not the directory {path}; e.g. "
                         f"{path / example}")
    if suffix is not None and path.suffix != suffix:
        path = path.with_suffix(suffix)
        if path.is_dir():
            raise UsageError(f"{option} {path} is a directory; give a file name")
    for src in inputs:
        if _same_file(path, Path(src)):
            raise UsageError(f"{option} {path} is the input file {src} (or a link to it); "
                             f"choose another {option}: an input is never overwritten")
    if path.exists() and not overwrite:
        raise UsageError(f"{option} {path} exists; pass --overwrite or another {option}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {path}: not writable")
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same path, a symbolic link, or a hard
    link (same device and inode)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (yet): not the same file
        return False


def check_folder(path: Path) -> Path:
    """An output folder that exists and is writable, or can be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file; give a folder")
    target = path if path.is_dir() else path.parent
    if not target.is_dir():
        raise UsageError(f"--out {path}: folder {target} does not exist")
    if not os.access(target, os.W_OK):
        raise UsageError(f"--out {path}: not writable")
    return path


def read_positions(path: Path):
    """Scatterer pixels (N, 2) from a text file of rows ``row col``, or from an
    ``.npz`` written by ``napari-qpi simulate`` (its metadata) or holding ``positions``."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--positions {path}: no such file")
    if path.suffix == ".npz":
        from ..io import load_stack

        try:
            meta = load_stack(path).metadata
        except ValueError:
            meta = {}
        if "positions" in meta:
            return np.asarray(meta["positions"], dtype=float)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "positions" in z:
                    return np.asarray(z["positions"], dtype=float)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--positions {path}: not a readable .npz ({exc})") from None
        raise UsageError(f"--positions {path} holds no positions (expected a file from "
                         "napari-qpi simulate or a 'positions' array)")
    try:
        return np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--positions {path}: not a text file of 'row col' lines "
                         f"({exc})") from None


def advance(bar, ev) -> None:
    """Move a tqdm ``bar`` to a Progress event; a new total or a step back starts it
    afresh (a new phase), so its rate and ETA stay true."""
    if bar.total != ev.total or ev.step < bar.n:
        bar.reset(total=ev.total)
    bar.update(ev.step - bar.n)


def drain_with_bar(gen, *, quiet: bool = False, desc: str | None = None):
    """Run a generator of :class:`~napari_qpi.progress.Progress` with one tqdm bar,
    made at the first event (no empty ``0it`` bar); return the generator's value."""
    from tqdm import tqdm

    from ..progress import drain

    bar, shown = None, desc

    def show(ev) -> None:
        nonlocal bar, shown
        if bar is None:
            bar = tqdm(total=ev.total, desc=desc or ev.message, leave=False,
                       disable=quiet, file=sys.stderr)
            shown = desc or ev.message
        if desc is None and shown != ev.message:
            bar.set_description(ev.message, refresh=False)
            shown = ev.message
        advance(bar, ev)

    try:
        return drain(gen, show)
    finally:
        if bar is not None:
            bar.close()


def print_warnings(info: dict) -> None:
    for w in info.get("warnings") or ():
        print(f"warning: {w}", file=sys.stderr)


def quality_line(info: dict) -> str:
    """The scores a user has without a true kernel, in one line."""
    parts = []
    for key, label in (("relative_residual", "relative residual"),
                       ("cv_residual", "cross-validated residual"),
                       ("whiteness", "residual whiteness")):
        if info.get(key) is not None:
            parts.append(f"{label} {info[key]:.3f}")
    if info.get("relative_residual_zero_width") is not None:
        parts.append(f"zero-width kernel's residual {info['relative_residual_zero_width']:.3f}")
    if info.get("scatterers_found") is not None:
        parts.append(f"{info['scatterers_found']} scatterers found "
                     f"({100 * info.get('active_fraction', 0):.1f} % of pixels active)")
    if info.get("kernel_size") is not None:
        auto = " (chosen from the data)" if info.get("kernel_size_auto") else ""
        parts.append(f"kernel window {info['kernel_size']} px{auto}")
    return ", ".join(parts)
