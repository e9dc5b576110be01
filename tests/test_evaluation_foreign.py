"""The foreign-set runner on a tiny foreign-like file, and on the real set if present."""

import json

import numpy as np
import pytest

from napari_qpi import simulate
from napari_qpi.evaluation.foreign import (
    default_directory,
    foreign_table,
    load_foreign,
    run_foreign,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """maps.npz (3 cases) and stacks.npz (1 case) in the foreign set's layout."""
    d = tmp_path_factory.mktemp("foreign")
    maps, meta = {}, []
    for i, (defect, snr) in enumerate([("point", 20.0), ("dimer", 5.0), ("point", 5.0)]):
        sim = simulate(seed=i, energies=[10.0], shape=(96, 96), n_scatterers=10,
                       kernel_size=65, snr=snr)
        maps[f"{i:02d}_observation"] = sim.observation[0]
        maps[f"{i:02d}_kernel"] = sim.kernel[0]
        maps[f"{i:02d}_positions"] = sim.positions
        meta.append({"index": i, "snr": snr, "family": "free", "defect": defect})
    np.savez(d / "maps.npz", meta_json=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             **maps)
    sim = simulate(seed=9, energies=[0.0, 20.0], shape=(96, 96), n_scatterers=10,
                   kernel_size=65, snr=5.0)
    np.savez(d / "stacks.npz",
             meta_json=np.frombuffer(json.dumps([{"index": 0, "snr": 5.0, "family": "free",
                                                  "defect": "compact"}]).encode(), np.uint8),
             **{"00_observation": sim.observation, "00_kernel": sim.kernel,
                "00_positions": sim.positions, "00_energies": sim.energies})
    return d


def test_load_and_limit(folder):
    cases = load_foreign(folder)
    assert [(c.set, c.index) for c in cases] == [("maps", 0), ("maps", 1), ("maps", 2),
                                                 ("stacks", 0)]
    assert cases[3].kernel.shape == (2, 65, 65)
    assert len(load_foreign(folder, limit=1)) == 2
    with pytest.raises(ValueError, match="maps.npz"):
        load_foreign(folder / "nothing")


def test_run_scores_blind_and_tables_per_defect_and_snr(folder):
    records = run_foreign(["power", "wiener"], folder)  # wiener needs positions: skipped
    assert {r["method"] for r in records} == {"power"}
    assert len(records) == 4
    for r in records:
        assert 0 <= r["tail_similarity"] <= 1
        assert np.isfinite(r["cv_residual"]) and np.isfinite(r["whiteness"])
        assert r["seconds"] > 0
    # the power kernel of an isotropic free-electron map is a fair estimate
    assert np.median([r["tail_similarity"] for r in records]) > 0.5
    text = foreign_table(records)
    assert "### Foreign maps (3 cases, blind)" in text
    assert "### Foreign stacks (1 cases, blind)" in text
    assert "| power | dimer | 1 |" in text and "| power | 20 | 1 |" in text


def test_guided_run_gives_every_method_the_true_positions(folder):
    records = run_foreign(["wiener"], folder, guided=True)  # needs positions: runs now
    assert {r["method"] for r in records} == {"wiener"} and len(records) == 4
    assert {r["mode"] for r in records} == {"guided"}
    # with the true positions Wiener reads these simulated kernels well
    assert np.median([r["tail_similarity"] for r in records]) > 0.5
    assert "### Foreign maps (3 cases, guided)" in foreign_table(records)
    # given the positions, the pattern reaches as far as the truth's
    assert 0.7 <= np.median([r["extent_ratio"] for r in records]) <= 1.3


def test_a_window_cut_to_the_core_reads_far_below_the_true_extent(folder):
    records = run_foreign(["power"], folder, kernel_size=9, limit=1)
    assert len(records) == 2
    for r in records:
        assert r["window_ratio"] < 0.5 and r["extent_ratio"] <= r["window_ratio"]


@pytest.mark.slow
def test_real_foreign_set_two_cases():
    folder = default_directory()
    if folder is None:
        pytest.skip("../shared/data/foreign is not here")
    records = run_foreign(["power"], folder, limit=2)
    assert len(records) == 4  # two maps and two stacks
    assert all(np.isfinite(r["tail_similarity"]) for r in records)
    assert {r["defect"] for r in records} <= {"point", "dimer", "compact"}


def test_shipped_decoder_holds_the_foreign_kernels():
    """Measured, never trained on: the anchored `default` decoder reproduces the foreign
    set's true kernels (stage-1 ceiling) far better than the unanchored one could (0.72;
    docs/models.md documents 0.842 for the shipped set)."""
    from napari_qpi.evaluation.classes import foreign_ceiling

    if default_directory() is None:
        pytest.skip("../shared/data/foreign is not here")
    ceiling = foreign_ceiling("default")
    assert set(ceiling) == {"point", "dimer", "compact", "stack slices", "maps"}
    assert ceiling["maps"] > 0.78 and ceiling["stack slices"] > 0.8


@pytest.mark.slow
@pytest.mark.longest
def test_default_extraction_beats_the_network_on_foreign_maps():
    """The default (`auto`, through extract() as a user runs it) against what the
    two-stage network alone and the power spectrum give, blind, on the foreign set's 12
    evenly spread maps (every defect kind and SNR; measured, never tuned on). On these
    12 `auto` scored 0.854 against 0.803 and 0.764 (0.849 and above the network on 10
    before the latent fit averaged near-tied views); on all 36 maps 0.852 / 0.813 /
    0.751 (docs/benchmarks.md). About 50 s: the 36 maps take
    two minutes, more than one test may."""
    from napari_qpi import extract
    from napari_qpi.evaluation.score import score
    from napari_qpi.extraction.methods.power import power_kernel
    from napari_qpi.models.inference import predict
    from napari_qpi.progress import drain

    folder = default_directory()
    if folder is None:
        pytest.skip("../shared/data/foreign is not here")
    cases = [c for c in load_foreign(folder, limit=12) if c.set == "maps"]
    assert len(cases) == 12
    tails: dict[str, list[float]] = {"auto": [], "network": [], "power": []}
    for case in cases:
        y = case.observation[None].astype(float)
        kernels = {"auto": extract(case.observation).kernel,
                   "network": drain(predict(y, uncertainty=False))[0][0],
                   "power": power_kernel(y - y.mean(), case.kernel.shape[-1])[0]}
        for name, k in kernels.items():
            tails[name].append(score(case.kernel, k)["tail_similarity"])
    med = {name: float(np.median(v)) for name, v in tails.items()}
    assert med["auto"] > med["network"] + 0.02, med
    assert med["auto"] > med["power"] + 0.05, med
    wins = int(np.sum(np.array(tails["auto"]) > np.array(tails["network"])))
    assert wins >= 8, (wins, tails)
