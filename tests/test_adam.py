"""The latent fit's hand-written Adam against torch.optim.Adam (which it replaces only to
avoid the constructor's second-long import)."""

from __future__ import annotations

import torch

from napari_qpi.extraction.methods.adam import Adam


def _loss(z, d, target):
    return ((torch.tanh(z) @ target - 1.0) ** 2).sum() + (d**3).abs().sum()


def test_adam_takes_torchs_steps_to_the_bit_and_keeps_moments_when_pruned():
    torch.manual_seed(0)
    target = torch.randn(6, 5)
    z0, d0 = torch.randn(4, 3, 6), torch.randn(4, 7)
    mine = [z0.clone().requires_grad_(True), d0.clone().requires_grad_(True)]
    ref = [z0.clone().requires_grad_(True), d0.clone().requires_grad_(True)]
    a, b = Adam(mine, lr=0.02), torch.optim.Adam(ref, lr=0.02)
    for _ in range(25):
        for opt, (z, d) in ((a, mine), (b, ref)):
            opt.zero_grad()
            _loss(z, d, target).backward()
            opt.step()
    assert all(torch.equal(p, q) for p, q in zip(mine, ref))
    assert not torch.equal(mine[0], z0)  # it moved
    # pruned to views 0 and 2: the same iterates as torch's Adam on those views alone,
    # going on from the same moments and step count
    keep = [0, 2]
    a = a.kept(keep)
    ref2 = [p.detach()[keep].clone().requires_grad_(True) for p in ref]
    b2 = torch.optim.Adam(ref2, lr=0.02)
    for old, new in zip(ref, ref2):
        b2.state[new] = {k: v[keep].clone() if v.ndim else v.clone()
                         for k, v in b.state[old].items()}
    for _ in range(10):
        for opt, (z, d) in ((a, a.params), (b2, ref2)):
            opt.zero_grad()
            _loss(z, d, target).backward()
            opt.step()
    assert all(torch.equal(p, q) for p, q in zip(a.params, ref2))
