"""The content-keyed memo of held-out fits: equal inputs fit once, changed inputs fit
again, and what it returns cannot change what it holds."""

from __future__ import annotations

import numpy as np

import napari_qpi.extraction.sparsity as sparsity
from napari_qpi import simulate
from napari_qpi.extraction.memo import content_memo, digest
from napari_qpi.extraction.quality import holdout_mask


def _case():
    sim = simulate(seed=3, energies=np.array([10.0]), shape=(64, 64), n_scatterers=12,
                   kernel_size=21)
    y = sim.observation - sim.observation.mean()
    return y, np.asarray(sim.kernel, float), np.full(1, 0.3 * y.std())


def test_an_equal_held_out_fit_is_computed_once(monkeypatch):
    y, kernel, noise = _case()
    train = holdout_mask(y.shape[-2:], 0)
    calls = []
    real = sparsity.fit_map
    monkeypatch.setattr(sparsity, "fit_map", lambda *a, **k: calls.append(1) or real(*a, **k))
    sparsity.heldout_blocks.cache_clear()
    first = sparsity.heldout_blocks(y, kernel, noise, train, merge=True)
    # equal content in new arrays (a copy, a slice of a stack) hits the memo
    again = sparsity.heldout_blocks(np.stack([y[0]]), kernel.copy(), noise.copy(),
                                    train.copy(), merge=True)
    assert len(calls) == 1
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    # a changed kernel, level or option is fitted anew
    sparsity.heldout_blocks(y, 1.01 * kernel, noise, train, merge=True)
    sparsity.heldout_blocks(y, kernel, 2 * noise, train, merge=True)
    sparsity.heldout_blocks(y, kernel, noise, train, merge=False)
    assert len(calls) == 4


def test_what_the_memo_returns_cannot_change_what_it_holds():
    @content_memo(maxsize=2)
    def double(a):
        return 2 * a, float(a.sum())

    x = np.arange(4.0)
    out, _ = double(x)
    out[:] = -1
    assert np.array_equal(double(x)[0], 2 * np.arange(4.0))
    # the oldest entry goes beyond maxsize
    double(x + 1), double(x + 2)
    assert digest(x) != digest(x.astype(np.float32)) != digest(x.reshape(2, 2))
