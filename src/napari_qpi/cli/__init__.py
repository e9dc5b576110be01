"""The napari-qpi command line: simulate, demo, extract, benchmark, train.

Every failure a user can cause — a bad argument, an unreadable or missing file, an
unwritable output, a closed pipe — prints one line ``napari-qpi: error: ...`` and exits
with status 2, before any long work starts. Anything else is a bug: one line, status 1
(``NAPARI_QPI_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from .checks import Formatter, Parser, UsageError, methods_text
from .commands import COMMANDS

__all__ = ["build_parser", "main"]

DESCRIPTION = ("Extract the single-scatterer QPI kernel from STM dI/dV maps, simulate "
               "test stacks, and measure every method.")


def build_parser() -> argparse.ArgumentParser:
    """The ``napari-qpi`` parser with every subcommand and its documented options."""
    parser = Parser(prog="napari-qpi", formatter_class=Formatter,
                    description=DESCRIPTION + "\n\n" + methods_text(),
                    epilog="'napari-qpi COMMAND --help' shows each command's options. "
                           "Exit status: 0 done, 2 bad input or arguments, 1 internal "
                           "error.")
    parser.add_argument("--version", action="version", version=f"napari-qpi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for name, (add_args, run, help_text, epilog) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=Formatter)
        add_args(p)
        p.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``napari-qpi`` command; returns the exit status."""
    try:
        try:
            args = build_parser().parse_args(argv)
            status = args.func(args)
        except SystemExit as exc:  # --help and --version exit 0 through argparse
            status = exc.code if isinstance(exc.code, int) else 0
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return status
    except (UsageError, ValueError) as exc:  # ValueError: bad data, QPIFormatError
        return _fail(str(exc))
    except BrokenPipeError:  # `napari-qpi benchmark | head`: the reader left early
        try:  # keep Python from failing again while it flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return _fail("output closed before everything was written (broken pipe)")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return _fail("interrupted", status=130)
    except Exception as exc:  # a bug: one line, the traceback on request
        if os.environ.get("NAPARI_QPI_DEBUG"):
            raise
        return _fail(f"internal error, {type(exc).__name__}: {exc} (please report it; "
                     "NAPARI_QPI_DEBUG=1 shows the traceback)", status=1)


def _fail(message: str, status: int = 2) -> int:
    lines = str(message).strip().splitlines()
    print(f"napari-qpi: error: {lines[0] if lines else 'failed'}", file=sys.stderr)
    return status
