"""The one error every reader raises for a file it cannot read."""

from __future__ import annotations

from pathlib import Path


class QPIFormatError(ValueError):
    """A file napari-qpi cannot read (a QPI stack, or a weight set's file); the message
    names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
