"""Audio features from the audio subnet, for the SVM evaluations and the HEAR-style API.

Layer and pooling (the paper only says "audio subnet conv features + linear SVM"):

* ``features.layer``: how many conv blocks of the audio subnet to run (default: all of
  them, i.e. the map that DMC clusters; 1 = the first block);
* ``features.pooling``: how the (channels, time, mel) map becomes one vector per clip:
  ``meanmax`` (default; mean and max over time and mel bands, concatenated: 2C values),
  ``mean`` or ``max`` (C values).

Evaluation clips go through the same log-mel frontend as training (``dmc.io.logmel``):
ESC-50 clips are cut or zero-padded to 5 s; DCASE recordings are cut into 60 overlapping
5 s sub-clips (``dmc.evaluation.protocols.subclip_starts``, starts on the log-mel hop), whose log-mels
:func:`subclip_logmel` takes from one STFT of the recording.

Clips go through the resampler and the frontend a few at a time (``RESAMPLE_CHUNK``,
``FRONTEND_CHUNK``): their float64 intermediates then stay in the CPU's caches, faster on
2 cores than batches of hundreds (``benchmarks/evaluate.py`` measures the decoding); the bytes do
not depend on the batch.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from dmc.config import Params
from dmc.io.evalsets import DatasetError, read_dcase, read_esc10, read_esc50
from dmc.evaluation.protocols import logmel_stats, subclip_starts
from dmc.io.logmel import LogMel

CLIP_SECONDS = 5.0   # ESC-50 clip length and DCASE sub-clip length
RESAMPLE_CHUNK = 4   # files resampled per call (those of one chunk that share rate and length)
FRONTEND_CHUNK = 16  # clips per log-mel call


def block_outputs(stack: torch.nn.Module, x: torch.Tensor, upto: int) -> torch.Tensor:
    """Run a ConvStack up to the end of block ``upto`` (1-based; blocks end before each pool)."""
    block = 1
    for layer in stack.layers:
        if isinstance(layer, torch.nn.MaxPool2d):
            if block == upto:
                return x
            block += 1
        x = layer(x)
    return x


def pool(fmap: torch.Tensor, how: str, dims=(2, 3)) -> torch.Tensor:
    if how == "mean":
        return fmap.mean(dim=dims)
    if how == "max":
        return fmap.amax(dim=dims)
    return torch.cat([fmap.mean(dim=dims), fmap.amax(dim=dims)], dim=1)


@torch.no_grad()
def embed_logmel(audio_net: torch.nn.Module, logmel: np.ndarray, layer: int, pooling: str,
                 batch_size: int = 64, device: str | torch.device = "cpu", desc: str = "extract") -> np.ndarray:
    """(N, T, n_mels) log-mel patches -> (N, D) pooled conv features."""
    # channels-last (NHWC) activations: oneDNN's convolutions and max-pooling run without layout
    # conversions, well ahead of NCHW on the CPU (benchmarks/evaluate.py); the sums are grouped
    # differently, so features move in their last float32 bits
    audio_net = audio_net.to(device, memory_format=torch.channels_last).eval()
    out = []
    steps = range(0, len(logmel), batch_size)
    for i in tqdm(steps, desc=desc, file=sys.stderr, mininterval=2, leave=False, disable=None):
        x = torch.from_numpy(np.asarray(logmel[i:i + batch_size], dtype=np.float32)).unsqueeze(1)
        x = x.to(device, memory_format=torch.channels_last)
        out.append(pool(block_outputs(audio_net, x, layer), pooling).float().cpu().numpy())
    width = audio_net.out_channels * (2 if pooling == "meanmax" else 1)
    return np.concatenate(out) if out else np.zeros((0, width), np.float32)


def _progress(items, total: int, desc: str):
    return tqdm(items, total=total, desc=desc, file=sys.stderr, mininterval=2, disable=None)


def _fit(wave: np.ndarray, n: int) -> np.ndarray:
    return wave[:n] if len(wave) >= n else np.pad(wave, (0, n - len(wave)))


def _read_mono(paths: list[str]) -> list[tuple[np.ndarray, int]]:
    """Decode files to mono at their own rate (:func:`dmc.io.audio.read_audio`), in order."""
    from dmc.io.audio import AudioReadError, read_audio, to_mono

    out = []
    for path in paths:
        try:
            audio, rate = read_audio(path)
        except AudioReadError as exc:
            raise DatasetError(f"{path}: {exc}") from None
        out.append((to_mono(audio), rate))
    return out


def resampled_audio(paths: list[str], sample_rate: int, desc: str, chunk: int = RESAMPLE_CHUNK):
    """Mono waveforms of ``paths`` at ``sample_rate``, in order: each file decoded once at its own
    rate, then the files of one chunk that share rate and length resampled together in one batch
    (identical to resampling them one by one). The next chunk is read by a second thread while
    this one is resampled (reading is mostly file I/O and numpy, which release the GIL)."""
    from dmc.io.audio import resample

    bar = _progress(range(len(paths)), len(paths), desc)
    with ThreadPoolExecutor(1) as reader:
        ahead = reader.submit(_read_mono, paths[:chunk])
        for i in range(0, len(paths), chunk):
            native = ahead.result()
            if i + chunk < len(paths):
                ahead = reader.submit(_read_mono, paths[i + chunk:i + 2 * chunk])
            out: list[np.ndarray | None] = [None] * len(native)
            groups: dict[tuple[int, int], list[int]] = {}
            for j, (wave, rate) in enumerate(native):
                groups.setdefault((rate, len(wave)), []).append(j)
            for (rate, _), idx in groups.items():
                batch = resample(np.stack([native[j][0] for j in idx]), rate, sample_rate)
                for j, wave in zip(idx, batch):
                    out[j] = wave
            bar.update(len(native))
            yield from out
    bar.close()


def _logmel(frontend: LogMel, clips: list[np.ndarray]) -> np.ndarray:
    """Log-mels of equally long waveforms, one frontend call."""
    with torch.no_grad():
        return frontend(torch.from_numpy(np.stack(clips))).numpy()


def subclip_logmel(frontend: LogMel, wave: np.ndarray, starts: list[int], n: int) -> np.ndarray:
    """Log-mels ``(len(starts), frames, n_mels)`` of the sub-clips ``wave[s:s + n]``: the same bytes
    as ``frontend`` on each sub-clip, computed from one STFT of the whole recording.

    A centred STFT frame reads ``n_fft`` samples around its centre. When every start is a
    multiple of the hop and inside the recording, a sub-clip's frames whose ``n_fft`` samples
    lie inside the sub-clip are frames of the recording, from the same samples; only the
    first and last few (those that read the sub-clip's reflect padding) are computed again,
    from short excerpts at the sub-clip's two ends with the same padding. Otherwise (starts
    off the hop grid, a sub-clip past the end) each sub-clip is computed on its own.
    """
    hop, half = frontend.hop_length, frontend.n_fft // 2
    frames = frontend.num_frames(n)
    head = -(-half // hop)                                  # frames 0..head-1 read the left padding
    tail = (n - half) // hop + 1                            # frames tail.. read the right padding
    shared = (n > 2 * half + hop and head < tail and len(wave) >= n
              and all(s % hop == 0 and 0 <= s <= len(wave) - n for s in starts))
    if not shared:
        clips = [_fit(wave[s:s + n], n) for s in starts]
        return np.concatenate([_logmel(frontend, clips[i:i + FRONTEND_CHUNK])
                               for i in range(0, len(clips), FRONTEND_CHUNK)])
    whole = _logmel(frontend, [wave])[0]
    head_len = (head - 1) * hop + half + 1                  # frames 0..head-1 stay clear of its end
    off = tail - head                                       # tail excerpt starts at frame `off`
    heads = _logmel(frontend, [wave[s:s + head_len] for s in starts])
    tails = _logmel(frontend, [wave[s + off * hop:s + n] for s in starts])
    out = np.empty((len(starts), frames, whole.shape[-1]), np.float32)
    for j, s in enumerate(starts):
        k = s // hop
        out[j, :head] = heads[j, :head]
        out[j, head:tail] = whole[k + head:k + tail]
        out[j, tail:] = tails[j, tail - off:]
    return out


def evalset_logmel(dataset: str, root: str | Path, decode: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Log-mel patches of every clip (ESC-50, ESC-10 release) or sub-clip (DCASE) of an evaluation set."""
    frontend = LogMel.from_params(decode)
    sr, n = decode["sample_rate"], int(round(CLIP_SECONDS * decode["sample_rate"]))
    rows, mels = [], []
    if dataset == "dcase":
        table = read_dcase(root)
        for r, wave in zip(table.itertuples(), resampled_audio(table.path.tolist(), sr, f"{dataset} audio")):
            starts = subclip_starts(len(wave) / sr, n=60, length_s=CLIP_SECONDS, step_s=decode["hop_seconds"])
            mels.append(subclip_logmel(frontend, wave, [int(round(t * sr)) for t in starts], n))
            rows += [{"recording": r.filename, "label": r.label, "split": r.split, "start_s": round(t, 4)}
                     for t in starts]
        clips = pd.DataFrame(rows, columns=["recording", "label", "split", "start_s"])
    else:
        table = read_esc10(root) if dataset == "esc10" else read_esc50(root)
        pending = []
        for wave in resampled_audio(table.path.tolist(), sr, f"{dataset} audio"):
            pending.append(_fit(wave, n))
            if len(pending) == FRONTEND_CHUNK:
                mels.append(_logmel(frontend, pending))
                pending = []
        if pending:
            mels.append(_logmel(frontend, pending))
        clips = table.drop(columns=["path"])
    return np.concatenate(mels).astype(np.float32), clips


def method_features(method: str, logmel: np.ndarray, cfg: Params, model_path: str | Path | None,
                    device: str | torch.device = "cpu") -> np.ndarray:
    """Features of one method: ``dmc`` (trained), ``random_init`` (same net, untrained) or ``logmel_stats``."""
    f = cfg.features
    if method == "logmel_stats":
        return logmel_stats(logmel).astype(np.float32)
    if method == "dmc":
        from dmc.model.training import load_model

        model, _ = load_model(model_path)
    else:
        from dmc.model.network import DMC

        # DMC builds from params dicts (a checkpoint stores its config as one): the dict, explicitly
        model = DMC.random_init(cfg.as_dict())
    layer = f.layer or model.audio.num_pools + 1
    return embed_logmel(model.audio, logmel, layer, f.pooling, f.batch_size, device, desc=method)
