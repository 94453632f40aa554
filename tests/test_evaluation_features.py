"""Audio features: layers and pooling, evaluation-set log-mels, the HEAR-style API, and the
point of the whole pipeline: trained DMC features beat the same network at random init."""

import numpy as np
import pytest
import torch

from conftest import load_default_params, with_overrides
from dmc.evaluation.protocols import evaluate_esc50
from dmc.evaluation.protocols import subclip_starts
from dmc.config import Params
from dmc.evaluation.features import block_outputs, evalset_logmel, method_features, pool, subclip_logmel
from dmc.io.logmel import LogMel
from dmc.hear import get_scene_embeddings, get_timestamp_embeddings, load_model
from dmc.model.network import DMC
from dmc.synth import generate_dcase, generate_esc50


def test_block_outputs_and_pooling_shapes(params):
    net = DMC.from_params(params["model"], params["train"]).audio.eval()
    x = torch.randn(2, 1, 101, 64)
    widths = [b[-1] for b in params["model"]["presets"]["tiny"]["audio"]]
    for layer, width in enumerate(widths, start=1):
        fmap = block_outputs(net, x, layer)
        side = 2 ** (layer - 1)
        assert fmap.shape == (2, width, 101 // side, 64 // side)
    assert torch.equal(block_outputs(net, x, len(widths)), net(x))
    fmap = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert torch.equal(pool(fmap, "mean"), fmap.mean(dim=(2, 3)))
    assert torch.equal(pool(fmap, "meanmax")[:, 3:], fmap.amax(dim=(2, 3)))


@pytest.mark.parametrize("seconds, step", [(30.0, 0.05), (9.0, 0.05), (5.6, 0.05), (30.0, None), (4.0, 0.05)])
def test_subclip_logmel_equals_each_subclip_alone(params, seconds, step):
    """Sub-clip log-mels from one STFT of the recording are the bytes the frontend gives each
    sub-clip alone: on the hop grid (shared frames), off it and for a short recording (each alone)."""
    frontend = LogMel.from_params(params["decode"])
    sr, n = frontend.sample_rate, 5 * frontend.sample_rate
    wave = np.random.default_rng(3).normal(size=int(seconds * sr)).astype(np.float32)
    starts = [int(round(t * sr)) for t in subclip_starts(seconds, 60, 5.0, step)]
    got = subclip_logmel(frontend, wave, starts, n)
    with torch.no_grad():
        alone = [frontend(torch.from_numpy(np.pad(wave[s:s + n], (0, max(0, n - len(wave[s:s + n])))))).numpy()
                 for s in starts]
    assert got.shape == (len(starts), frontend.num_frames(n), 64)
    np.testing.assert_array_equal(got, np.stack(alone))


@pytest.mark.slow
def test_evalset_logmel_layouts(tmp_path, params):
    generate_esc50(tmp_path / "esc", n_classes=4, clips_per_class=5, seed=0)
    generate_dcase(tmp_path / "dcase", recordings_per_scene=2, seconds=8.0, seed=0)
    lm, clips = evalset_logmel("esc50", tmp_path / "esc", params["decode"])
    assert lm.shape == (20, 101, 64) and list(clips.columns[:4]) == ["filename", "fold", "target", "category"]
    lm, clips = evalset_logmel("dcase", tmp_path / "dcase", params["decode"])
    assert lm.shape == (20 * 60, 101, 64)
    first = clips[clips.recording == clips.recording.iloc[0]]
    assert len(first) == 60 and first.start_s.iloc[0] == 0 and first.start_s.iloc[-1] == pytest.approx(3.0)
    assert set(clips.split) == {"train", "test"}


@pytest.mark.slow
def test_hear_api(trained_model):
    model = load_model(str(trained_model))
    audio = torch.randn(3, 5 * model.sample_rate) * 0.1
    scene = get_scene_embeddings(audio, model)
    assert scene.shape == (3, model.scene_embedding_size) == (3, 256)
    emb, ts = get_timestamp_embeddings(audio, model)
    assert emb.shape == (3, 101 // 8, model.timestamp_embedding_size) and ts.shape == (3, 101 // 8)
    assert torch.allclose(ts[0, :2], torch.tensor([200.0, 600.0]))   # 8 hops of 50 ms per cell
    # a scene embedding is the pooled conv map: its mean half equals the mean over time of the frames'
    assert torch.allclose(scene[:, :128], emb[:, :, :128].mean(dim=1), atol=1e-5)


@pytest.mark.slow
def test_dmc_features_beat_random_init(trained_model, tmp_path):
    """On an ESC-like set of 30 categories built from the videos' sound families, the trained
    network's features classify better than the same network at random init. (Strictly better,
    no margin: at the default the gain is a point or two in every seed of the seeds sweep, far
    from issue 9's +10; see the README's headline table.)"""
    generate_esc50(tmp_path / "esc", n_classes=30, clips_per_class=10, seed=1)
    p = load_default_params()
    lm, clips = evalset_logmel("esc50", tmp_path / "esc", p["decode"])
    acc = {m: evaluate_esc50(method_features(m, lm, Params.from_dict(p), trained_model), clips, [0.1, 1.0])["acc_mean"]
           for m in ("dmc", "random_init")}
    assert acc["dmc"] > acc["random_init"], acc
