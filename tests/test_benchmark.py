"""The seeded benchmark: capabilities from the registry, scores with and without truth."""

import numpy as np
import pytest

from napari_qpi.evaluation import benchmark
from napari_qpi.evaluation.benchmark import auto_pick_rate, make_cases, plan, run, table


@pytest.fixture(scope="module")
def cases():
    return make_cases(1, splits=("seen",), snrs=(20.0,))


def test_plan_reads_capabilities_from_the_registry(cases):
    from napari_qpi.extraction.registry import METHODS

    todo = plan(list(METHODS), cases)
    modes = {(m, mode) for m, mode, _ in todo}
    for name, method in METHODS.items():
        assert ((name, "blind") in modes) == (not method.needs_positions)
        assert ((name, "guided") in modes) == method.accepts_positions


def test_bad_case_count_is_refused():
    with pytest.raises(ValueError, match="n=0"):
        make_cases(0)


def test_records_hold_truth_and_no_truth_scores(cases):
    records = list(run(["power", "wiener"], cases))
    assert [(r["method"], r["mode"]) for r in records] == [("power", "blind"),
                                                          ("wiener", "guided")]
    for r in records:
        assert 0 <= r["tail_similarity"] <= 1 and r["window"] == 65
        for key in benchmark.BLIND_METRICS:
            assert np.isfinite(r[key]), key
    text = table(records)
    assert "cv-resid med" in text and "white med" in text
    assert text.count("\n| power |") == 1


def _rec(method, case, tail, chosen=None, candidates=()):
    return {"method": method, "mode": "blind", "case": case, "tail_similarity": tail,
            "chosen": chosen or method, "candidates": candidates}


def test_auto_pick_rate_counts_the_truly_best_candidate():
    cands = ("two-stage", "power")
    records = [
        _rec("two-stage", 0, 0.9), _rec("power", 0, 0.5),
        _rec("auto", 0, 0.9, "two-stage", cands),   # best: a hit
        _rec("two-stage", 1, 0.4), _rec("power", 1, 0.8),
        _rec("auto", 1, 0.4, "two-stage", cands),   # power was better: a miss
        _rec("auto", 2, 0.7, "refine", ("refine",)),  # refine not run: not judged
        _rec("power", 3, 0.9, "power", ()),  # no candidates: not a selecting method
    ]
    assert auto_pick_rate(records) == (1, 2)
    assert "1 of 2 cases" in table([{**r, "split": "seen", "snr": 5.0, "seconds": 1.0,
                                     "seconds_kernel": 0.5} for r in records],
                                   metrics=("tail_similarity",))
