"""Packaging: a cheap, Qt-free core import, the napari manifest, the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

from napari_qpi import load_stack

#: The console script when installed, else the same entry point through ``-m``.
CLI = [shutil.which("napari-qpi")] if shutil.which("napari-qpi") else [
    sys.executable, "-m", "napari_qpi.cli"]
HEAVY = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "torch")


def test_simulate_loads_no_gui_and_no_torch() -> None:
    code = (
        "import json, sys\n"
        "import napari_qpi\n"
        "sim = napari_qpi.simulate(seed=0, shape=(32, 32), kernel_size=17)\n"
        "assert sim.observation.shape == (8, 32, 32)\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_manifest_entry_point_resolves() -> None:
    (ep,) = [e for e in entry_points(group="napari.manifest") if e.name == "napari-qpi"]
    assert ep.value == "napari_qpi:napari.yaml"
    from importlib.resources import files

    text = (files("napari_qpi") / "napari.yaml").read_text()
    assert "name: napari-qpi" in text


@pytest.mark.skipif(shutil.which("npe2") is None, reason="npe2 command not installed")
def test_npe2_validate_with_imports() -> None:
    out = subprocess.run(["npe2", "validate", "napari-qpi", "--imports"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_cli_simulate_writes_a_readable_stack(tmp_path) -> None:
    target = tmp_path / "tmp.npz"
    out = subprocess.run(
        [*CLI, "simulate", "--out", str(target),
         "--size", "32", "--energies", "3", "--scatterers", "4", "--seed", "1"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    stack = load_stack(target)
    assert stack.shape == (3, 32, 32)
    assert np.isfinite(stack.data).all() and stack.data.std() > 0
    assert len(stack.metadata["positions"]) == 4
    assert stack.pixel_size == pytest.approx(2.0)


def test_cli_reports_bad_arguments(tmp_path) -> None:
    out = subprocess.run(
        [*CLI, "simulate", "--out", str(tmp_path / "x.npz"),
         "--size", "8"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "shape" in out.stderr
