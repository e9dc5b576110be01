"""``QPIStack`` and ``load_stack``: round trips, plain arrays, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_qpi import QPIFormatError, QPIStack, load_stack


def _data(e: int = 3, h: int = 12, w: int = 10) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((e, h, w)).astype(np.float32)


def test_npz_round_trip(tmp_path) -> None:
    meta = {"family": "square", "positions": np.array([[1, 2], [3, 4]]), "snr": np.float64(5)}
    stack = QPIStack(_data(), energies=[-10.0, 0.0, 12.5], pixel_size=0.9, metadata=meta)
    path = stack.save(tmp_path / "stack")  # suffix added
    assert path.suffix == ".npz"
    back = load_stack(path)
    np.testing.assert_array_equal(back.data, stack.data)
    np.testing.assert_array_equal(back.energies, [-10.0, 0.0, 12.5])
    assert back.pixel_size == pytest.approx(0.9)
    assert back.metadata == {"family": "square", "positions": [[1, 2], [3, 4]], "snr": 5.0}
    assert back.shape == (3, 12, 10)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".tiff"])
def test_plain_arrays_load_with_default_axes(tmp_path, suffix: str) -> None:
    data = _data()
    path = tmp_path / f"plain{suffix}"
    if suffix == ".npy":
        np.save(path, data.astype(np.float64))
    else:
        tifffile.imwrite(path, data, photometric="minisblack")
    stack = load_stack(path)
    assert stack.data.dtype == np.float32
    np.testing.assert_allclose(stack.data, data, rtol=1e-6)
    np.testing.assert_array_equal(stack.energies, [0.0, 1.0, 2.0])
    assert stack.pixel_size is None  # the file does not say: unknown, not 1 Å


def test_unknown_pixel_size_survives_a_round_trip(tmp_path) -> None:
    path = QPIStack(_data()).save(tmp_path / "unknown.npz")
    assert QPIStack(_data()).pixel_size is None
    assert load_stack(path).pixel_size is None
    assert load_stack(QPIStack(_data(), pixel_size=0.5).save(tmp_path / "k")).pixel_size == 0.5


def test_npz_energies_are_sorted_with_their_slices(tmp_path) -> None:
    data = _data()
    path = QPIStack(data, energies=[5.0, -1.0, 2.0]).save(tmp_path / "unsorted.npz")
    back = load_stack(path)
    np.testing.assert_array_equal(back.energies, [-1.0, 2.0, 5.0])
    np.testing.assert_array_equal(back.data, data[[1, 2, 0]])


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_two_dimensional_map_becomes_one_slice(tmp_path, suffix: str) -> None:
    image = _data()[0]
    path = tmp_path / f"map{suffix}"
    np.save(path, image) if suffix == ".npy" else tifffile.imwrite(path, image)
    stack = load_stack(path)
    assert stack.shape == (1, 12, 10)
    np.testing.assert_allclose(stack.data[0], image)
    assert QPIStack(image).shape == (1, 12, 10)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"data": np.zeros((2, 3, 4, 5))}, "shape"),
        ({"data": np.zeros(5)}, "shape"),
        ({"data": np.array([["a"]])}, "real numbers"),
        ({"data": np.zeros((2, 4, 4), complex)}, "real numbers"),
        ({"data": np.zeros((2, 4, 4)), "energies": [0.0]}, "energies"),
        ({"data": np.zeros((2, 4, 4)), "pixel_size": 0.0}, "pixel_size"),
        ({"data": np.zeros((2, 4, 4)), "pixel_size": np.nan}, "pixel_size"),
        ({"data": np.zeros((2, 4, 4)), "pixel_size": np.inf}, "pixel_size"),
        ({"data": np.zeros((2, 4, 4)), "pixel_size": "abc"}, "pixel_size"),
        ({"data": np.zeros((2, 4, 4)), "pixel_size": -2}, "pixel_size"),
        ({"data": np.zeros((2, 4, 4)), "energies": [1.0, 1.0]}, "repeat"),
        ({"data": np.zeros((2, 4, 4)), "energies": [np.nan, 1.0]}, "finite"),
        ({"data": np.full((2, 4, 4), 1e300)}, "float32"),
        ({"data": np.zeros((2, 4, 4)), "metadata": [1]}, "metadata"),
    ],
)
def test_bad_stack_raises_naming_the_problem(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        QPIStack(**kwargs)


def test_bad_files_raise_qpi_format_error(tmp_path) -> None:
    with pytest.raises(QPIFormatError, match="no such file"):
        load_stack(tmp_path / "missing.npz")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(QPIFormatError, match="unknown file type"):
        load_stack(other)
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2, 2)))
    with pytest.raises(QPIFormatError, match="shape"):
        load_stack(tmp_path / "cube.npy")
    np.save(tmp_path / "nan.npy", np.full((2, 4, 4), np.nan))
    with pytest.raises(QPIFormatError, match="finite"):
        load_stack(tmp_path / "nan.npy")
    np.savez(tmp_path / "nodata.npz", energies=np.arange(3.0))
    with pytest.raises(QPIFormatError, match="'data'"):
        load_stack(tmp_path / "nodata.npz")
    np.savez(tmp_path / "mismatch.npz", data=np.zeros((3, 4, 4)), energies=np.arange(2.0))
    with pytest.raises(QPIFormatError, match="energies"):
        load_stack(tmp_path / "mismatch.npz")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(QPIFormatError, match="broken.tif"):
        load_stack(tmp_path / "broken.tif")
    with pytest.raises(QPIFormatError, match="channel"):
        load_stack(tmp_path / "cube.npy", channel="LockinX")


def test_qpi_format_error_is_a_value_error() -> None:
    assert issubclass(QPIFormatError, ValueError)


def test_io_modules_import_without_a_loop() -> None:
    """Module-level imports inside napari_qpi.io form no cycle (readers import the data
    model, load.py imports the readers, never the other way round)."""
    import ast
    from pathlib import Path

    import napari_qpi.io as io_pkg

    folder = Path(io_pkg.__file__).parent
    graph = {}
    for f in folder.glob("*.py"):
        tree = ast.parse(f.read_text())
        deps = set()
        for node in tree.body:  # module level only: lazy imports inside functions are fine
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
        graph[f.stem] = deps & {p.stem for p in folder.glob("*.py")}

    def visit(node, path):
        assert node not in path, f"import loop: {' → '.join([*path, node])}"
        for dep in graph.get(node, ()):
            visit(dep, [*path, node])

    for module in graph:
        if module != "__init__":
            visit(module, [])
    assert "stack" in graph["sxm"] and "load" in graph["__init__"]  # the graph was read
    assert set(io_pkg.READERS) == {".npz", ".npy", ".tif", ".tiff", ".3ds", ".sxm"}
