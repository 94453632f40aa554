"""Decoding real media made here with PyAV: containers, codecs, rates, layouts, broken files."""

import av
import numpy as np
import pytest
import torch
import torchaudio

from dmc.io.decoding import DecodeError, decode_video
from dmc.io.logmel import LogMel
from media import make_video, tone

SEG, SIZE, SR = 1.0, 32, 16000


@pytest.mark.parametrize("name,kw", [
    ("h264_aac_mono_44k.mp4", dict(channels=1, audio_rate=44100)),
    ("h264_aac_stereo_48k.mp4", dict(channels=2, audio_rate=48000)),
    ("h264_aac_mono_16k.mp4", dict(channels=1, audio_rate=16000)),
    ("vp9_opus_stereo.webm", dict(channels=2)),
    ("h264_pcm16_51_8k.mkv", dict(channels=6, audio_rate=8000, audio_format="s16")),
    ("h264_pcm32_96k.mkv", dict(channels=2, audio_rate=96000, audio_format="s32")),
    ("h264_float_22k.mkv", dict(channels=1, audio_rate=22050, audio_format="flt")),
])
def test_decode_formats_shapes_and_frames(tmp_path, name, kw):
    path = make_video(tmp_path / name, seconds=3.0, fps=10, **kw)
    clip = decode_video(path, SEG, SIZE, SR)
    assert clip.frames.shape == (3, SIZE, SIZE, 3) and clip.frames.dtype == np.uint8
    assert clip.waves.shape == (3, SR) and clip.waves.dtype == np.float32
    # segment s is paired with the frame nearest its centre (s + 0.5) s: frame 5, 15, 25,
    # whose red channel the writer set to 10 * index (lossy codecs: a few levels off)
    np.testing.assert_allclose(clip.frame_times, [0.5, 1.5, 2.5], atol=1e-6)
    np.testing.assert_allclose(clip.frames[:, :, :, 0].mean(axis=(1, 2)), [50, 150, 250], atol=6)
    assert abs(clip.audio_seconds - 3.0) < 0.1 and clip.note == ""


def test_audio_is_downmixed_and_resampled_tone(tmp_path):
    path = make_video(tmp_path / "a.mkv", seconds=2.0, channels=2, audio_rate=44100, audio_format="flt")
    clip = decode_video(path, SEG, SIZE, SR)
    expected = tone(2.0, 44100, 2).mean(axis=0)    # the writer's two channels, averaged
    expected = torchaudio.functional.resample(torch.from_numpy(expected), 44100, SR).numpy()
    np.testing.assert_allclose(clip.waves.reshape(-1), expected[: 2 * SR], atol=2e-3)


def test_variable_frame_rate_uses_timestamps(tmp_path):
    path = make_video(tmp_path / "vfr.mkv", seconds=4.0, fps=10, vfr=True)
    clip = decode_video(path, SEG, SIZE, SR)
    assert clip.frames.shape[0] == 4
    # each kept frame is the one whose timestamp is nearest to its segment centre
    assert np.all(np.abs(clip.frame_times - (np.arange(4) + 0.5)) < 0.1)


def test_audio_longer_than_video_gives_segments_covered_by_both(tmp_path):
    path = make_video(tmp_path / "long_audio.mkv", seconds=2.0, audio_seconds=5.0)
    assert decode_video(path, SEG, SIZE, SR).frames.shape[0] == 2


@pytest.mark.parametrize("kw,reason", [
    (dict(audio=False), "no audio stream"),
    (dict(video=False), "no video stream"),
    (dict(seconds=0.5), "shorter than one segment"),
])
def test_unusable_streams_raise_with_reason(tmp_path, kw, reason):
    path = make_video(tmp_path / "x.mkv", **kw)
    with pytest.raises(DecodeError, match=reason):
        decode_video(path, SEG, SIZE, SR)


def test_zero_bytes_and_text_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    with pytest.raises(DecodeError, match="0 bytes"):
        decode_video(tmp_path / "empty.mp4", SEG, SIZE, SR)
    with pytest.raises(DecodeError, match="cannot open"):
        decode_video(tmp_path / "text.mp4", SEG, SIZE, SR)


def test_truncated_files(tmp_path):
    for name in ("t.mp4", "t.webm"):
        data = make_video(tmp_path / name, seconds=4.0).read_bytes()
        (tmp_path / ("cut_" + name)).write_bytes(data[: int(len(data) * 0.6)])
    # MP4 written by a muxer keeps its index (moov) at the end: cut, it cannot be opened
    with pytest.raises(DecodeError, match="cannot open"):
        decode_video(tmp_path / "cut_t.mp4", SEG, SIZE, SR)
    # WebM streams: the complete segments before the cut are kept, and the cut is noted
    clip = decode_video(tmp_path / "cut_t.webm", SEG, SIZE, SR)
    assert 1 <= clip.frames.shape[0] < 4 and "truncated" in clip.note


def test_logmel_equals_direct_torchaudio(tmp_path):
    path = make_video(tmp_path / "a.mp4", seconds=2.0)
    clip = decode_video(path, SEG, SIZE, SR)
    ours = LogMel(sample_rate=SR, n_mels=64, f_min=125, f_max=7500, window_seconds=0.08,
                  hop_seconds=0.05, log_offset=0.01)(torch.from_numpy(clip.waves))
    # the same transform in float64 (ours computes in float64 with CPU-independent kernels,
    # then rounds to float32)
    direct = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000, n_fft=2048, win_length=1280, hop_length=800, f_min=125, f_max=7500,
        n_mels=64, power=1.0, mel_scale="htk", window_fn=lambda n: torch.hann_window(n, dtype=torch.float64),
    ).double()(torch.from_numpy(clip.waves).double())
    expected = torch.log(direct + 0.01).transpose(1, 2).float()
    assert ours.shape == (2, 1 + SR // 800, 64) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, expected)   # torchaudio's filterbank is float32: 1e-7 relative


def test_audio_shorter_than_video_is_not_called_truncated(tmp_path):
    # a real clip: 5.94 s of sound in a 9 s video; nothing is cut off, the soundtrack just
    # ends earlier, so the clip is complete ("ok", no note) with the segments the audio covers
    path = make_video(tmp_path / "short_audio.mkv", seconds=9.0, audio_seconds=5.94)
    with av.open(str(path)) as c:
        assert abs(c.duration / 1e6 - 9.0) < 0.2          # the container does say 9 s
    clip = decode_video(path, SEG, SIZE, SR)
    assert clip.note == "" and clip.frames.shape[0] == 5 and abs(clip.audio_seconds - 5.94) < 0.05


def test_one_second_vp8_vorbis_webm_is_shorter_than_a_segment(tmp_path):
    # 24 frames decode, but a 1 s clip holds no 2 s segment: that is the reason, not
    # "no decodable video frame"
    path = make_video(tmp_path / "one_second.webm", seconds=1.0, fps=24, vcodec="libvpx", acodec="vorbis",
                      audio_rate=44100, channels=2)
    with av.open(str(path)) as c:
        assert (c.streams.video[0].codec_context.name, c.streams.audio[0].codec_context.name) == ("vp8", "vorbis")
        assert sum(1 for _ in c.decode(video=0)) == 24
    with pytest.raises(DecodeError, match=r"^shorter than one segment: 1\.\d\d s audio, 1\.00 s video"):
        decode_video(path, 2.0, SIZE, SR)


def test_no_decodable_frame_still_named(tmp_path):
    # a video stream whose packets are garbage: not one frame decodes
    path = make_video(tmp_path / "v.mkv", seconds=3.0)
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size and p.pos is not None]
    for pos, size in packets:
        data[pos + 4:pos + size] = bytes(size - 4)                 # zero the payload, keep sizes
    (tmp_path / "broken.mkv").write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="^no decodable video frame; decoding stopped early"):
        decode_video(tmp_path / "broken.mkv", SEG, SIZE, SR)


def test_decode_runs_mkl_in_its_cpu_independent_mode(tmp_path):
    """Found on an Intel host (AVX-512): MKL's FFT/DGEMM kernels behind the frontend moved one float32
    log-mel value in a million of the test corpus; with MKL_CBWR=COMPATIBLE none moved. `dmc decode`
    must set it before torch's first MKL call: every MKL call it makes reports CNR:COMPATIBLE."""
    import os
    import subprocess
    import sys

    from conftest import load_default_params, with_overrides, write_params
    from dmc.synth import generate_videos

    generate_videos(tmp_path / "v", tmp_path / "gt", n_videos=1, seconds=2.0, width=64, height=64, fps=10,
                    other_containers=0.0, seed=0, workers=1)
    p = write_params(tmp_path / "params.yaml", with_overrides(load_default_params(), decode__num_shards=1))
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    env["MKL_VERBOSE"] = "1"
    proc = subprocess.run([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(p), "decode", "--shard", "0",
                           "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "shard-00000")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modes = [w for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("MKL_VERBOSE")
             for w in line.split() if w.startswith("CNR:")]
    assert modes and set(modes) == {"CNR:COMPATIBLE"}, sorted(set(modes))
