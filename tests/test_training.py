"""Training as a user runs it: arguments checked before any work, a tiny model overfits
one batch, resume is bit-for-bit, and a checkpoint of another config is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from napari_qpi.models import losses
from napari_qpi.models.data import build_bank, make_observations
from napari_qpi.models.nets import KernelVAE, ModelConfig
from napari_qpi.models.train import TrainConfig, train
from napari_qpi.progress import Progress, drain

TINY = TrainConfig(sampler="families", bank_size=6, stage1_steps=3, stage2_steps=2,
                   onestep_steps=2, batch_size=4, map_sizes=(80,))


@pytest.mark.parametrize(("change", "phrase"), [
    ({"stage1_steps": 0}, "stage1_steps"),
    ({"onestep_steps": 2.5}, "onestep_steps"),
    ({"bank_size": -3}, "bank_size"),
    ({"batch_size": True}, "batch_size"),
    ({"lr": 0.0}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"split": "unseen"}, "split"),
    ({"sampler": "magic"}, "sampler"),
    ({"seed": -1}, "seed"),
    ({"guide_drop": 1.5}, "guide_drop"),
    ({"map_sizes": ()}, "map_sizes"),
    ({"map_sizes": (16,)}, "map_sizes"),
    ({"scatterers": (9, 3)}, "scatterers"),
    ({"model": ModelConfig(kernel_size=64)}, "kernel_size"),
])
def test_bad_train_arguments_raise_before_any_file(tmp_path, change, phrase):
    with pytest.raises(ValueError, match=phrase):
        cfg = dataclasses.replace(TINY, **change)
        drain(train(cfg, tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_bad_output_folder_and_device_raise_before_any_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match="out_dir"):
        drain(train(TINY, afile))
    with pytest.raises(ValueError, match="device"):
        drain(train(TINY, tmp_path / "run", device="banana"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tiny_vae_overfits_one_batch():
    torch.manual_seed(0)
    bank = build_bank("all", 4, sampler="broad", seed=1)
    k = bank.windows
    vae = KernelVAE(ModelConfig(widths=(8, 16, 16, 16), latent_dim=16, anchor=False))
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        terms = losses.reconstruction(vae.decode(vae.encode(k)[0]), k)
        loss = sum(terms.values())
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.2 * first
    assert float(terms["tail_cos"].detach()) < 0.3


@pytest.mark.slow
def test_tiny_anchored_vae_learns_the_phase_its_power_kernel_lacks():
    """Multi-site kernels (off-centre, asymmetric) from their maps' power kernels: the
    untrained anchored decoder returns the zero-phase power kernel; trained on one batch,
    the latent supplies phase and the tail error drops well below the power kernel's."""
    from napari_qpi.models.data import bank_from_specs, make_observations
    from napari_qpi.models.features import anchor_kernel
    from napari_qpi.physics.classes import sample_classes

    torch.manual_seed(0)
    specs = [s for s in sample_classes("all", 40, 3) if s.name.split("/")[2] == "dimer"][:4]
    bank = bank_from_specs(specs)
    k = bank.windows
    y, _ = make_observations(bank, torch.arange(len(k)), 96, torch.Generator().manual_seed(0),
                             snr_range=(40.0, 40.0))
    anchor = anchor_kernel(y, 65)
    vae = KernelVAE(ModelConfig(widths=(8, 16, 16, 16), latent_dim=16))
    with torch.no_grad():
        start = losses.reconstruction(vae.decode(vae.encode(k)[0], anchor), k)
    power = losses.reconstruction(anchor, k)
    assert abs(float(start["tail_cos"]) - float(power["tail_cos"])) < 0.02
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    for _ in range(150):
        terms = losses.reconstruction(vae.decode(vae.encode(k)[0], anchor), k)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(terms["tail_cos"].detach()) < 0.5 * float(power["tail_cos"])


def _weights(folder):
    from safetensors.torch import load_file

    return {p: load_file(str(folder / f"{p}.safetensors")) for p in ("vae", "encoder", "onestep")}


def test_training_yields_progress_and_resumes_bit_for_bit(tmp_path):
    events = []
    drain(train(TINY, tmp_path / "a", resume=False), events.append)
    assert all(isinstance(e, Progress) for e in events)
    assert {e.message for e in events} == {"bank", "stage1", "stage2", "onestep"}
    assert "loss" in events[-1].info
    # interrupt in the middle of stage 2, then resume
    gen = train(TINY, tmp_path / "b", resume=False)
    for ev in gen:
        if ev.message == "stage2":
            break
    gen.close()
    assert not (tmp_path / "b" / "vae.safetensors").exists()
    resumed = []
    drain(train(TINY, tmp_path / "b"), resumed.append)
    assert "stage1" not in {e.message for e in resumed}  # the finished stage is kept
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for part in a:
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)


def test_resume_refused_on_config_mismatch(tmp_path):
    drain(train(TINY, tmp_path, resume=False))
    before = {f.name: f.stat().st_mtime_ns for f in tmp_path.iterdir()}
    with pytest.raises(ValueError, match="split: 'all' → 'seen'"):
        drain(train(dataclasses.replace(TINY, split="seen"), tmp_path))
    with pytest.raises(ValueError, match="stage2_steps"):
        drain(train(dataclasses.replace(TINY, stage2_steps=3), tmp_path))
    assert (tmp_path / "state.pt").is_file()
    assert {f.name: f.stat().st_mtime_ns for f in tmp_path.iterdir()} == before
    # a checkpoint without its config (older versions) is refused too
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    del state["config"]
    torch.save(state, tmp_path / "state.pt")
    with pytest.raises(ValueError, match="no training config"):
        drain(train(TINY, tmp_path))
    drain(train(TINY, tmp_path, resume=False))  # starting afresh is allowed


def test_bank_is_reused_when_only_the_schedule_changes(tmp_path):
    gen = train(TINY, tmp_path, resume=False)
    for ev in gen:
        if ev.message == "stage1":
            break
    gen.close()  # the bank is written, no stage finished
    written = (tmp_path / "bank.pt").stat().st_mtime_ns
    drain(train(dataclasses.replace(TINY, stage1_steps=4), tmp_path))
    assert (tmp_path / "bank.pt").stat().st_mtime_ns == written  # loaded, not rebuilt
    with pytest.raises(ValueError, match="bank_size"):
        drain(train(dataclasses.replace(TINY, bank_size=7, stage1_steps=4), tmp_path))


def test_zero_stage1_steps_keep_the_warm_start_decoder(tmp_path):
    from safetensors.torch import load_file

    first = drain(train(TINY, tmp_path / "first"))
    cfg = dataclasses.replace(TINY, stage1_steps=0, init_from=str(first), seed=3)
    second = drain(train(cfg, tmp_path / "second"))
    old, new = (load_file(str(d / "vae.safetensors")) for d in (first, second))
    assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old)
    # stage 2 did train: the encoder moved away from its warm start
    enc_old, enc_new = (load_file(str(d / "encoder.safetensors")) for d in (first, second))
    assert any(not torch.equal(enc_old[k], enc_new[k]) for k in enc_old)
    with pytest.raises(ValueError, match="init_from"):
        dataclasses.replace(TINY, stage1_steps=0)


def test_zero_onestep_steps_keep_the_warm_start_baseline(tmp_path):
    from safetensors.torch import load_file

    first = drain(train(TINY, tmp_path / "first"))
    cfg = dataclasses.replace(TINY, stage1_steps=0, onestep_steps=0, init_from=str(first))
    second = drain(train(cfg, tmp_path / "second"))
    old, new = (load_file(str(d / "onestep.safetensors")) for d in (first, second))
    assert all(torch.equal(old[k], new[k]) for k in old)
    with pytest.raises(ValueError, match="init_from"):
        dataclasses.replace(TINY, onestep_steps=0)


def test_guide_shift_moves_whole_scatterer_maps_of_half_the_guided_samples():
    """A shifted guide is the exact one rolled by at most guide_shift px (what a user's
    clicks or a blind fit's peaks give); the maps and kernels are drawn as without it."""
    from napari_qpi.models.train import _batch

    bank = build_bank("all", 4, sampler="families", seed=1)
    cfg = dataclasses.replace(TINY, batch_size=24, guide_drop=0.0, map_sizes=(96,))
    plain = _batch(bank, cfg, torch.Generator().manual_seed(5), "cpu")
    moved = _batch(bank, dataclasses.replace(cfg, guide_shift=3),
                   torch.Generator().manual_seed(5), "cpu")
    assert torch.equal(plain[0], moved[0]) and torch.equal(plain[2], moved[2])
    same = 0
    for exact, guide in zip(plain[1], moved[1]):
        rolls = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if torch.equal(exact.roll((dy, dx), (-2, -1)), guide)]
        assert rolls, "a guide that is not a roll of the exact one"
        same += (0, 0) in rolls
    assert 0 < same < len(plain[1])  # some kept exact, some moved
    with pytest.raises(ValueError, match="guide_shift"):
        dataclasses.replace(TINY, guide_shift=-1)


def test_aligned_loss_forgives_a_shift_within_its_radius_only():
    torch.manual_seed(0)
    true = torch.randn(2, 33, 33)
    pred = true.roll((2, -3), (-2, -1))
    p, t = losses.aligned(pred, true, 4)
    assert p.shape == t.shape == (2, 25, 25) and torch.allclose(p, t)
    assert losses.reconstruction(p, t)["full"] < 1e-10
    far = true.roll((6, 0), (-2, -1))  # beyond the radius: no window matches it
    p, t = losses.aligned(far, true, 4)
    assert losses.reconstruction(p, t)["full"] > 0.5


@pytest.mark.slow
def test_self_guided_stage2_trains_and_needs_the_guide_function(tmp_path):
    from napari_qpi.extraction.selfguide import self_guide

    calls = []

    def spy(maps, kernels):
        calls.append((maps.shape, kernels.shape))
        return self_guide(maps, kernels)

    for fraction in (0.5, 1.0):  # 1.0: no sample keeps its exact positions
        cfg = dataclasses.replace(TINY, self_guide=fraction, stage2_steps=3)
        events = []
        drain(train(cfg, tmp_path / f"run{fraction}", self_guide=spy), events.append)
        stage2 = [e.info for e in events if e.message == "stage2"]
        assert len(stage2) == 3
        assert all(torch.isfinite(torch.tensor(i["loss"])) and "self_full" in i for i in stage2)
        assert ("mu" in stage2[0]) == (fraction < 1)
    n = round(0.5 * TINY.batch_size)
    assert calls[0] == ((n, 1, 80, 80), (n, 1, 65, 65))
    with pytest.raises(ValueError, match="self_guide"):
        drain(train(dataclasses.replace(TINY, self_guide=0.5), tmp_path / "none"))
    assert not (tmp_path / "none").exists()
    with pytest.raises(ValueError, match="self_guide"):
        dataclasses.replace(TINY, self_guide=1.5)


def test_recentred_bank_moves_each_kernel_to_its_brightest_point():
    from scipy.ndimage import gaussian_filter

    from napari_qpi.evaluation.classes import class_bank
    from napari_qpi.models.data import BRIGHT_SIGMA, bright_offsets, recentre_bank

    bank = class_bank("held_out", 12, seed=8)
    moved = recentre_bank(bank)
    d = bright_offsets(bank.windows.numpy())
    assert (np.abs(d).sum(1) > 0).sum() >= 3  # multi-site defects do move
    assert not bright_offsets(moved.windows.numpy()).any()  # and then stay
    c = bank.windows.shape[-1] // 2
    for w, m, (dy, dx) in zip(bank.windows.numpy(), moved.windows.numpy(), d):
        inner, ref = m[9:-9, 9:-9], w[9 + dy:w.shape[0] - 9 + dy, 9 + dx:w.shape[1] - 9 + dx]
        cos = (inner * ref).sum() / np.linalg.norm(inner) / np.linalg.norm(ref)
        assert cos > 1 - 1e-5 and abs(np.linalg.norm(m) - 1) < 1e-5  # a shift, unit norm
        assert gaussian_filter(m, BRIGHT_SIGMA)[c, c] >= gaussian_filter(w, BRIGHT_SIGMA)[c, c]
    # maps made from it: the matched filter peaks on the marked scatterers
    y, act = make_observations(moved, torch.arange(12), 96, torch.Generator().manual_seed(0),
                               snr_range=(50, 50))
    from napari_qpi.extraction.selfguide import self_guide
    guides = self_guide(y[:, None], moved.windows[:, None])
    hits = (guides * (act > 0)).sum() / guides.sum()
    assert hits > 0.8
    with pytest.raises(ValueError, match="centre"):
        dataclasses.replace(TINY, centre="middle")


@pytest.mark.slow
def test_bank_simulated_by_several_processes_is_the_same_bank(tmp_path):
    """Specs are drawn before the work is shared out: any worker count gives the same
    kernels in the same order (what a GPU run relies on to stay reproducible)."""
    from napari_qpi.models.data import bank_from_specs, bank_specs

    specs = bank_specs("seen", 130, seed=4, sampler="broad")  # two chunks of 100
    one = bank_from_specs(specs)
    two = bank_from_specs(specs, workers=2)
    assert one.families == two.families and len(one) == 130
    assert torch.equal(one.spectra, two.spectra)
    assert torch.equal(one.windows, two.windows)
    assert torch.equal(one.orders, two.orders)
    with pytest.raises(ValueError, match="workers"):
        drain(train(TINY, tmp_path / "w", workers=0))
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_anchored_stage1_encoder_warm_starts_silent_and_trains(tmp_path):
    """``ModelConfig(anchored_encoder=True)``: stage 1's encoder also reads the map's
    power kernel. Warm-started from a set without it, the new input channel starts at
    zero, so the posterior is the source's for any anchor; a fresh run trains every
    stage (the encoder's kernel trunks start from the kernel channel) and its set loads."""
    from napari_qpi.models.warm import warm_start
    from napari_qpi.models.weights import load_set

    first = drain(train(TINY, tmp_path / "first"))
    _, source, _ = load_set(first)
    vae = KernelVAE(ModelConfig(anchored_encoder=True))
    warm_start({"vae": vae}, str(first))
    k = torch.randn(3, 65, 65)
    k = k / k.flatten(1).norm(dim=1)[:, None, None]
    with torch.no_grad():
        for a, b in zip(source["vae"].encode(k), vae.encode(k, torch.randn(3, 65, 65))):
            assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="anchor"):
        vae.encode(k)
    with pytest.raises(ValueError, match="anchored_encoder"):
        KernelVAE(ModelConfig(anchored_encoder=True, anchor=False))

    cfg = dataclasses.replace(TINY, model=ModelConfig(anchored_encoder=True))
    _, nets, _ = load_set(drain(train(cfg, tmp_path / "fresh")))
    assert nets["vae"].encoder.net[0][0].weight.shape[1] == 2
    assert nets["encoder"].power.net[0][0].weight.shape[1] == 1
