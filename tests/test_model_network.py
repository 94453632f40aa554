"""Subnets, loss and the DMC model (tiny shapes, CPU)."""

import math

import pytest
import torch

from dmc.model.loss import max_margin_loss, mismatch_indices, similarity
from dmc.model.network import DMC
from dmc.model.subnets import PRESETS, AudioNet, ConvStack, VisualNet, check_preset, to_vectors

torch.set_num_threads(2)


# ---- loss ------------------------------------------------------------------------------------

def test_similarity_hand_computed():
    ca = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [3.0, 0.0]]])
    cv = torch.tensor([[[2.0, 0.0], [1.0, 1.0]], [[-1.0, -1.0], [0.0, 5.0]]])
    s = similarity(ca, cv)
    torch.testing.assert_close(s, torch.tensor([1.0 + 1 / math.sqrt(2), -1.0 + 0.0]))


def test_max_margin_loss_hand_computed():
    # clip 0: audio == visual directions (S = 2); clip 1: audio opposite on cluster 0 (S = 0)
    ca = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, 1.0]]])
    cv = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    neg = torch.tensor([1, 0])
    # S(a0,v0)=2, S(a1,v0)=0 ; S(a1,v1)=0, S(a0,v1)=2
    loss, stats = max_margin_loss(ca, cv, neg, margin=1.0)
    # hinges: max(0, 1 - 2 + 0) = 0 ; max(0, 1 - 0 + 2) = 3 -> mean 1.5
    assert loss.item() == pytest.approx(1.5)
    assert stats["pos_sim"] == pytest.approx(1.0)
    assert stats["neg_sim"] == pytest.approx(1.0)
    assert stats["accuracy"] == pytest.approx(0.5)
    assert stats["active"] == pytest.approx(0.5)
    loss, _ = max_margin_loss(ca, cv, neg, margin=3.0)
    assert loss.item() == pytest.approx((1.0 + 5.0) / 2)


def test_mismatch_indices_never_same_video_and_deterministic():
    ids = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3])
    for seed in range(20):
        idx = mismatch_indices(ids, torch.Generator().manual_seed(seed))
        assert idx.dtype == torch.long and idx.shape == ids.shape
        assert torch.all(ids[idx] != ids)
    a = mismatch_indices(ids, torch.Generator().manual_seed(7))
    b = mismatch_indices(ids, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    # every valid partner gets picked eventually (uniform, not always the same one)
    picks = {mismatch_indices(ids, torch.Generator().manual_seed(s))[0].item() for s in range(60)}
    assert picks == {2, 3, 4, 5, 6, 7}


def test_mismatch_indices_raises_when_impossible():
    with pytest.raises(ValueError):
        mismatch_indices(torch.tensor([4, 4, 4]))
    with pytest.raises(ValueError):
        mismatch_indices(torch.tensor([5]))


# ---- subnets ---------------------------------------------------------------------------------

def test_convstack_layout():
    net = ConvStack(3, [[4, 5], [6]])
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU"]
    assert net.out_channels == 6
    bn = ConvStack(1, [[4], [6]], batch_norm=True)
    assert [type(m).__name__ for m in bn.layers][:3] == ["Conv2d", "BatchNorm2d", "ReLU"]


def test_paper_preset_shapes():
    p = PRESETS["paper"]
    with torch.no_grad():
        v = VisualNet(p["visual"])(torch.zeros(1, 3, 64, 64))     # 256 -> 16 in the paper
        a = AudioNet(p["audio"])(torch.zeros(1, 1, 16, 64))
    assert v.shape == (1, 512, 4, 4)
    assert a.shape == (1, 512, 2, 8)
    assert VisualNet(p["visual"]).output_hw(256, 256) == (16, 16)


def test_tiny_preset_shapes():
    p = PRESETS["tiny"]
    with torch.no_grad():
        v = VisualNet(p["visual"])(torch.rand(2, 3, 64, 64) * 2 - 1)
        a = AudioNet(p["audio"])(torch.randn(2, 1, 40, 64))
    assert v.shape == (2, 128, 8, 8)
    assert a.shape == (2, 128, 5, 8)
    p16 = PRESETS["tiny16"]                  # one visual pool fewer: a 16 x 16 map, the same audio stack
    assert p16["audio"] == p["audio"]
    with torch.no_grad():
        assert VisualNet(p16["visual"])(torch.rand(2, 3, 64, 64) * 2 - 1).shape == (2, 128, 16, 16)


def test_to_vectors_row_major_and_channels_last():
    fmap = torch.randn(2, 3, 4, 5)
    vec = to_vectors(fmap)
    assert vec.shape == (2, 20, 3)
    row, col = divmod(13, 5)
    torch.testing.assert_close(vec[:, 13], fmap[:, :, row, col])
    torch.testing.assert_close(vec.reshape(2, 4, 5, 3), fmap.permute(0, 2, 3, 1))
    torch.testing.assert_close(to_vectors(fmap.to(memory_format=torch.channels_last)), vec)


def test_presets_must_end_with_same_width():
    with pytest.raises(ValueError, match="same channel count"):
        DMC([[8], [16]], [[8], [32]])
    with pytest.raises(ValueError):
        check_preset([], [[8]])
    for preset in PRESETS.values():
        check_preset(preset["visual"], preset["audio"])


# ---- model -----------------------------------------------------------------------------------

def tiny_model(**kw):
    torch.manual_seed(0)
    hp = {"clusters": 4, "dim": 8, "iterations": 3, "temperature": 1.0, **kw}
    return DMC.from_params({"preset": "tiny"}, hp)


def test_from_params_and_forward_shapes():
    model = DMC.from_params(
        {"preset": "mine", "presets": {"mine": {"visual": [[4], [8]], "audio": [[4], [8]]}}},
        {"clusters": 3, "dim": 5, "iterations": 2, "temperature": 2.0, "lr": 1e-4},
    )
    assert model.clustering.clusters == 3 and model.clustering.dim == 5
    assert model.clustering.iterations == 2 and model.clustering.temperature == 2.0
    out = model(torch.zeros(2, 3, 16, 16), torch.zeros(2, 1, 12, 64))
    assert out["cv"].shape == (2, 3, 5) and out["ca"].shape == (2, 3, 5)
    assert out["assign_v"].shape == (2, 64, 3) and out["assign_a"].shape == (2, 6 * 32, 3)
    assert out["visual_hw"] == (8, 8) and out["audio_hw"] == (6, 32)
    # a preset not listed under "presets" comes from subnets.PRESETS
    assert DMC.from_params({"preset": "tiny", "presets": {}}, {}).visual.out_channels == 128
    with pytest.raises(ValueError, match="model.preset"):
        DMC.from_params({"preset": "nope"}, {})


def test_single_shared_clustering_module():
    model = tiny_model()
    projections = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(projections) == 1


def test_num_vectors():
    model = tiny_model(clusters=10)
    assert model.num_vectors(64, 40, 64) == (64, 40)
    with pytest.raises(ValueError, match="train.clusters"):
        model.num_vectors(16, 40, 64)          # 2x2 visual map: 4 vectors < 10 clusters
    with pytest.raises(ValueError):
        model.num_vectors(4, 40, 64)           # empty visual map


def test_encoders_and_channels_last():
    model = tiny_model()
    frames = torch.rand(2, 3, 64, 64) * 2 - 1
    logmel = torch.randn(2, 1, 40, 64)
    with torch.no_grad():
        uv, hw = model.encode_visual(frames)
        ua = model.encode_audio(logmel)
        assert uv.shape == (2, 64, 128) and hw == (8, 8) and ua.shape == (2, 40, 128)
        ref = model(frames, logmel)
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(frames.to(memory_format=torch.channels_last),
                       logmel.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out["cv"], ref["cv"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["ca"], ref["ca"], rtol=1e-4, atol=1e-5)


def toy_batch():
    """8 clips from 4 'videos': 2 clips each, noisy copies of a smooth per-video pattern.

    (Smooth patterns, not i.i.d. noise: conv features of i.i.d. noise images all look alike,
    so nothing would tell the videos apart.)
    """
    g = torch.Generator().manual_seed(1)
    video_ids = torch.arange(4).repeat_interleave(2)
    up = torch.nn.functional.interpolate
    base_f = up(torch.rand(4, 3, 4, 4, generator=g) * 2 - 1, size=(64, 64), mode="bilinear")
    base_a = up(torch.randn(4, 1, 5, 8, generator=g), size=(40, 64), mode="bilinear")
    frames = (base_f[video_ids] + 0.1 * torch.randn(8, 3, 64, 64, generator=g)).clamp(-1, 1)
    logmel = base_a[video_ids] + 0.1 * torch.randn(8, 1, 40, 64, generator=g)
    return frames, logmel, video_ids


def test_gradients_reach_both_subnets_and_projection():
    model = tiny_model()
    frames, logmel, ids = toy_batch()
    out = model(frames, logmel)
    neg = mismatch_indices(ids, torch.Generator().manual_seed(0))
    loss, _ = max_margin_loss(out["ca"], out["cv"], neg, margin=4.0)
    loss.backward()
    first_v = model.visual.layers[0].weight.grad
    first_a = model.audio.layers[0].weight.grad
    proj = model.clustering.proj.weight.grad
    for g in (first_v, first_a, proj):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_adam_steps_reduce_loss():
    model = tiny_model()
    frames, logmel, ids = toy_batch()
    neg = mismatch_indices(ids, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    losses = []
    for _ in range(40):
        out = model(frames, logmel)
        loss, stats = max_margin_loss(out["ca"], out["cv"], neg, margin=4.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses
    assert stats["accuracy"] > 0.5
