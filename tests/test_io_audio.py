"""dmc.io.audio: one decoder for training videos and evaluation clips, equal to the previous path."""

from __future__ import annotations

import wave

import av
import numpy as np
import pytest
import torch

from dmc.io.audio import read_audio, resample
from dmc.io.avcpu import ffmpeg_portable
from dmc.io.evalsets import load_audio
from dmc.evaluation.features import evalset_logmel
from dmc.io.logmel import LogMel
from media import make_video, tone


def previous_load_audio(path, sample_rate):
    """The evaluation clips' decoder before dmc.io.audio (release of stop 7), kept as the reference:
    PyAV with FFmpeg's full probe, every frame through libswresample to planar float, the whole
    file resampled, then the channel mean; with today's resampler (float64, CPU-independent)."""
    chunks = []
    with ffmpeg_portable(), av.open(str(path)) as container:
        stream = container.streams.audio[0]
        in_rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout)
        for frame in container.decode(stream):
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
    audio = np.concatenate(chunks, axis=1)
    if in_rate != sample_rate:
        audio = resample(audio, in_rate, sample_rate)
    return audio.mean(axis=0).astype(np.float32)


def write_pcm(path, x: np.ndarray, rate: int, width: int):
    """(channels, samples) in [-1, 1] -> integer PCM WAV of 1, 2, 3 or 4 bytes per sample."""
    scale = 2 ** (8 * width - 1) - 1
    ints = np.round(x.T * scale).astype(np.int64)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    else:
        raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints.ravel())
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def write_audio(path, x: np.ndarray, rate: int, codec: str, fmt: str):
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=48000 if codec == "libopus" else rate)
        s.layout = "mono" if x.shape[0] == 1 else "stereo"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x, np.float32), format="fltp", layout=s.layout)
        frame.sample_rate = rate
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


@pytest.mark.parametrize("width, rate, channels", [(1, 8000, 1), (2, 44100, 1), (3, 48000, 2), (4, 22050, 1)])
def test_pcm_wav_equals_previous_path(tmp_path, width, rate, channels):
    x = tone(1.3, rate, channels)
    path = write_pcm(tmp_path / "a.wav", x, rate, width)
    ours, ref = load_audio(path, 16000), previous_load_audio(path, 16000)
    if channels == 1:
        assert np.array_equal(ours, ref)        # bit for bit
    else:   # mean before resampling (as dmc decode does), not after: rounding only
        np.testing.assert_allclose(ours, ref, atol=2e-6)


@pytest.mark.parametrize("codec, fmt, ext", [("flac", "flac", "flac"), ("libmp3lame", "mp3", "mp3"),
                                             ("libopus", "ogg", "ogg"), ("aac", "adts", "aac"),
                                             ("pcm_f32le", "wav", "wav")])
def test_compressed_formats_equal_previous_path(tmp_path, codec, fmt, ext):
    """Formats PyAV reads (float WAV, FLAC, MP3, OGG Opus, AAC) with the small probe: the same
    samples as FFmpeg's full probe + libswresample."""
    path = write_audio(tmp_path / f"a.{ext}", tone(2.0, 44100, 1), 44100, codec, fmt)
    ours, ref = load_audio(path, 16000), previous_load_audio(path, 16000)
    assert np.array_equal(ours, ref)


def test_video_audio_track_equals_standalone_file(tmp_path):
    """The audio of a video and the same samples as a WAV decode to the same waveform."""
    video = make_video(tmp_path / "v.mkv", seconds=2.0, audio_rate=32000, audio_format="s16")
    audio, rate = read_audio(video)
    wav = write_pcm(tmp_path / "v.wav", audio, rate, 2)
    again, rate2 = read_audio(wav)
    assert rate == rate2 == 32000 and np.array_equal(audio, again)


def test_resample_batch_equals_one_by_one():
    x = np.random.default_rng(0).normal(size=(5, 44100)).astype(np.float32)
    assert np.array_equal(resample(x, 44100, 16000), np.stack([resample(r, 44100, 16000) for r in x]))


def test_evalset_logmel_equals_previous_path(tmp_path):
    """`dmc evalset` (batched resampling, WAV fast path) gives the log-mels of the previous path."""
    from conftest import load_default_params

    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = []
    for i, (rate, seconds) in enumerate([(44100, 5.0), (44100, 5.0), (22050, 4.2), (44100, 6.0)]):
        name = f"{i % 5 + 1}-{100 + i}-A-{i % 2}.wav"
        write_pcm(root / "audio" / name, tone(seconds, rate, 1, freq=300 + 100 * i), rate, 2)
        rows.append(f"{name},{i % 5 + 1},{i % 2},{['a', 'b'][i % 2]}")
    (root / "meta" / "esc50.csv").write_text("filename,fold,target,category\n" + "\n".join(rows) + "\n")
    decode = load_default_params()["decode"]
    logmel, clips = evalset_logmel("esc50", root, decode)
    n = 5 * decode["sample_rate"]
    frontend = LogMel.from_params(decode)
    for i, name in enumerate(clips["filename"]):
        wave_ = previous_load_audio(root / "audio" / name, decode["sample_rate"])
        wave_ = wave_[:n] if len(wave_) >= n else np.pad(wave_, (0, n - len(wave_)))
        with torch.no_grad():
            ref = frontend(torch.from_numpy(wave_[None])).numpy()[0]
        assert np.array_equal(logmel[i], ref), name


@pytest.mark.parametrize("orig,new", [(44100, 16000), (48000, 16000), (22050, 16000), (8000, 16000), (32000, 16000)])
def test_resampler_equals_torchaudio(orig, new):
    """SincResample (one matrix product) gives torchaudio.functional.resample's result in float64,
    rounded to float32: equal but for values whose float64 sums differ in the last bits."""
    import torchaudio

    x = np.random.default_rng(orig).uniform(-1, 1, (3, orig // 2 + 17)).astype(np.float32)
    ref = torchaudio.functional.resample(torch.from_numpy(x).double(), orig, new).float().numpy()
    ours = resample(x, orig, new)
    assert ours.shape == ref.shape
    assert np.mean(ours == ref) > 0.9999
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
