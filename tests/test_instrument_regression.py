"""Real-instrument regression: the default extraction on one case of each artefact of the
shared instrument set, and the real Nanonis grid through preprocess → extract.

The instrument set is for measuring only: these tests pin behaviour, nothing is tuned on
them (the cases are the first that carry each artefact, in file order).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_qpi import extract, load_stack
from napari_qpi.evaluation.score import score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INSTRUMENT = DATA / "instrument" / "maps.npz"
GRID = DATA / "nanonis" / "NanonisReader_STS_grid_lockin.3ds"
ARTEFACTS = ("oversampled", "lockin", "lines", "pink", "drift", "lattice", "background")


def first_cases() -> list[int]:
    """The first case carrying each artefact (several artefacts can share one case)."""
    if not INSTRUMENT.is_file():
        return []
    with np.load(INSTRUMENT) as z:
        meta = json.loads(bytes(z["meta_json"]).decode())
    picks = {a: next(m["index"] for m in meta if a in m["artefacts"]) for a in ARTEFACTS}
    return sorted(set(picks.values()))


@pytest.mark.slow
@pytest.mark.skipif(not INSTRUMENT.is_file(), reason=f"{INSTRUMENT} not available")
def test_default_extraction_on_one_instrument_map_of_each_artefact():
    """The issue's criteria on the set of first cases: every scatterer map under 10 % of
    the pixels, the median within 3× the true scatterer count, the median tail similarity
    at least the 0.65 no artefact may fall below, and no case collapsed; the pattern's
    reported extent within ±30 % of the true kernel's (median; each within 2×), in a
    window no narrower than the true extent."""
    from napari_qpi.extraction.finish import kernel_extent

    tails, ratios, extents = [], [], []
    with np.load(INSTRUMENT) as z:
        meta = {m["index"]: m for m in json.loads(bytes(z["meta_json"]).decode())}
        for index in first_cases():
            res = extract(z[f"{index:02d}_observation"])
            assert res.info["active_fraction"] <= 0.10, meta[index]
            assert res.info["preprocess"][0]["step"] == "background"
            ratios.append(res.info["scatterers_found"] / meta[index]["scatterers"])
            true = z[f"{index:02d}_kernel"]
            tails.append(score(true, res.kernel)["tail_similarity"])
            extents.append(res.info["kernel_extent"] / kernel_extent(true))
            assert res.kernel.shape[-1] >= kernel_extent(true), meta[index]
    assert np.median(ratios) <= 3, ratios
    assert np.median(tails) >= 0.65, tails
    assert min(tails) >= 0.3, tails
    assert 0.7 <= np.median(extents) <= 1.3 and all(0.5 <= e <= 2 for e in extents), extents


@pytest.mark.skipif(not GRID.is_file(), reason=f"{GRID} not available")
def test_real_grid_goes_through_preprocess_and_extract():
    stack = load_stack(GRID)
    res = extract(stack, preprocess=["background", "lines"], method="power")
    assert [s["step"] for s in res.info["preprocess"]] == ["background", "lines"]
    assert np.all(np.isfinite(res.kernel)) and np.all(np.isfinite(res.residual))
    assert res.residual.shape == stack.data.shape
    assert 0 <= res.info["relative_residual"] <= 1
    assert res.info["noise_source"] in ("held-out", "spectral", "density cap",
                                        "uninformative")
    auto = extract(stack.data[::25], method="power")  # the automatic steps, recorded
    assert auto.info["preprocess"][0] == {"step": "background", "order": 2}
