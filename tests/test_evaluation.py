"""``napari_qpi.evaluation.score``: one scoring function, centred crops."""

import numpy as np
import pytest

from napari_qpi import simulate
from napari_qpi.evaluation import SCORES, score
from napari_qpi.evaluation.metrics import tail_similarity


@pytest.fixture(scope="module")
def kernel():
    return simulate(seed=0, shape=(80, 80), n_scatterers=2).kernel[:3]  # (3, 65, 65)


def test_identical_kernels_score_perfectly(kernel):
    s = score(kernel, kernel)
    for name in ("tail_similarity", "kernel_similarity", "qspace_correlation"):
        assert s[name] == pytest.approx(1, abs=1e-9)
    assert s["paper_rmse"] == pytest.approx(0, abs=1e-12)
    assert s["window"] == 65
    assert set(SCORES) <= set(s)


def test_similarities_ignore_sign_scale_and_small_shifts(kernel):
    moved = -4.0 * np.roll(kernel, 1, axis=-1)
    s = score(kernel, moved)
    assert s["kernel_similarity"] > 0.99
    assert s["tail_similarity"] > 0.9
    assert s["qspace_correlation"] > 0.99
    assert s["paper_rmse"] > 0.3  # the paper's error sees the sign


def test_random_kernel_scores_low(kernel):
    noise = np.random.default_rng(1).normal(size=kernel.shape)
    s = score(kernel, noise)
    assert s["tail_similarity"] < 0.3
    assert s["kernel_similarity"] < 0.3


def test_windows_are_matched_around_their_centres(kernel):
    # the same kernel in a wider window, as truth or as estimate: nothing lost
    wide = np.pad(kernel, ((0, 0), (10, 10), (10, 10)))
    s = score(wide, kernel)
    assert s["window"] == 85  # the truth's window; the estimate zero-padded
    assert s["tail_similarity"] == pytest.approx(1, abs=1e-9)
    s = score(kernel, wide)
    assert s["window"] == 65
    assert s["tail_similarity"] == pytest.approx(1, abs=1e-9)
    # an even-sided estimate (centre at 84 // 2) against a smaller truth
    s = score(kernel[:, 1:-1, 1:-1], wide[:, :-1, :-1])
    assert s["window"] == 63
    assert s["tail_similarity"] == pytest.approx(1, abs=1e-9)


def test_a_window_that_misses_the_tail_pays_for_it(kernel):
    small = kernel[:, 24:-24, 24:-24]  # 17 px of a 65-px kernel
    truth_window = score(kernel, small)["tail_similarity"]
    common = score(kernel, small, window="common")
    assert common["window"] == 17
    assert common["tail_similarity"] == pytest.approx(1, abs=1e-9)
    assert truth_window < 0.9


def test_centred_peak_stays_centred():
    k = np.zeros((41, 41))
    k[20, 20] = 1.0
    k[20, 30] = 0.5  # a tail pixel 10 px right of the centre
    small = np.zeros((21, 21))
    small[10, 10] = 1.0
    small[10, 20] = 0.5
    s = score(small, k)
    assert s["window"] == 21
    assert s["kernel_similarity"] == pytest.approx(1, abs=1e-12)
    s = score(k, small)
    assert s["window"] == 41
    assert s["kernel_similarity"] == pytest.approx(1, abs=1e-12)
    # an fft-ordered crop of a centred kernel (the old benchmark bug) loses the peak
    from napari_qpi.physics.kernels import crop_centered

    assert crop_centered(k, 21)[10, 10] == 0


def test_single_map_against_a_stack_and_reduce(kernel):
    per = score(kernel, kernel[1], reduce="none")
    assert per["tail_similarity"].shape == (3,)
    assert per["tail_similarity"][1] == pytest.approx(1)
    np.testing.assert_allclose(per["tail_similarity"], tail_similarity(kernel, kernel[1][None]))
    assert score(kernel, kernel[1], reduce="mean")["tail_similarity"] == pytest.approx(
        per["tail_similarity"].mean())


@pytest.mark.parametrize("truth, estimate, phrase", [
    (np.ones((3, 9, 9)), np.ones((2, 9, 9)), "energies"),
    (np.ones((9, 7)), np.ones((9, 9)), "square"),
    (np.full((9, 9), np.nan), np.ones((9, 9)), "NaN"),
])
def test_bad_input_is_one_value_error(truth, estimate, phrase):
    with pytest.raises(ValueError, match=phrase):
        score(truth, estimate)
