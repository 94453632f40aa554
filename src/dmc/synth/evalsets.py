"""Synthetic evaluation sets in the exact on-disk layouts of ESC-50 and DCASE2013 scenes.

Both are built from the same sound families as the training videos (``sounds.py``), so
audio features learned from the videos transfer. Every file depends only on the seed and
its own identity (class/clip or scene/recording), never on the other counts.

ESC-50 layout::

    root/audio/{fold}-{src_id}-{take}-{target}.wav    5.0 s, 44.1 kHz, mono, 16-bit PCM
    root/meta/esc50.csv   filename,fold,target,category,esc10,src_file,take

DCASE2013 scenes layout::

    root/audio/<scene><NN>.wav    30 s, 44.1 kHz, stereo, 16-bit PCM
    root/train.txt, root/test.txt    "audio/<scene><NN>.wav<TAB><scene>" per line
"""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_dir, atomic_file
from dmc.io import portable as P
from .sounds import CLASS_NAMES, colored_noise, normalize, render_sound, reverberate

ESC50_COLUMNS = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
# variant suffix -> (pitch factor, rate factor, reverb seconds, background noise level)
VARIANTS = (("", 1.0, 1.0, 0.0, 0.0), ("low", 0.55, 1.0, 0.0, 0.0), ("high", 1.8, 1.0, 0.0, 0.0),
            ("far", 1.0, 1.0, 0.6, 0.0), ("fast", 1.0, 2.2, 0.0, 0.0), ("slow", 1.0, 0.45, 0.0, 0.0),
            ("street", 1.0, 1.0, 0.0, 0.6), ("low_far", 0.55, 1.0, 0.6, 0.0))
SCENES = ("bus", "busystreet", "office", "openairmarket", "park", "quietstreet", "restaurant",
          "supermarket", "tube", "tubestation")
# scene -> (background noise exponent, noise level, [(family, events per minute or 0 = always
#           on, (min, max) event seconds, level, pitch)])
SCENE_RECIPES = {
    "bus": (2.0, 0.08, [("engine", 0, None, 0.08, 0.7), ("hum", 0, None, 0.03, 0.8),
                        ("clock", 4, (1, 4), 0.04, 1.0), ("drum", 6, (0.3, 1), 0.05, 0.8)]),
    "busystreet": (1.0, 0.06, [("engine", 12, (2, 6), 0.10, 1.0), ("siren", 1.5, (3, 8), 0.06, 1.0),
                               ("bird", 2, (1, 3), 0.03, 1.0), ("drum", 3, (0.3, 1), 0.04, 1.0)]),
    "office": (0.5, 0.01, [("hum", 0, None, 0.015, 1.3), ("clock", 10, (1, 3), 0.04, 1.3),
                           ("warble", 1.5, (1, 3), 0.05, 1.0), ("flute", 3, (1, 3), 0.04, 0.6)]),
    "openairmarket": (1.0, 0.05, [("flute", 20, (0.5, 3), 0.06, 0.6), ("drum", 4, (0.3, 1.5), 0.05, 1.0),
                                  ("bird", 3, (1, 3), 0.03, 1.0), ("clock", 4, (0.5, 2), 0.04, 1.0)]),
    "park": (1.5, 0.02, [("bird", 20, (1, 4), 0.05, 1.0), ("warble", 1, (1, 2), 0.02, 1.4),
                         ("engine", 1, (3, 8), 0.02, 1.0)]),
    "quietstreet": (2.0, 0.015, [("engine", 3, (3, 8), 0.05, 1.0), ("bird", 5, (1, 3), 0.03, 1.0),
                                 ("clock", 1, (2, 5), 0.03, 0.6)]),
    "restaurant": (1.0, 0.05, [("clock", 25, (0.2, 1), 0.05, 1.4), ("flute", 25, (0.5, 3), 0.05, 0.6),
                               ("hum", 0, None, 0.015, 1.0)]),
    "supermarket": (1.0, 0.03, [("hum", 0, None, 0.03, 1.0), ("warble", 6, (0.2, 0.8), 0.05, 1.3),
                                ("flute", 6, (0.5, 2), 0.04, 0.6), ("clock", 3, (0.5, 2), 0.03, 1.0)]),
    "tube": (2.0, 0.12, [("engine", 0, None, 0.12, 0.5), ("hum", 0, None, 0.04, 0.7),
                         ("drum", 40, (0.2, 0.5), 0.06, 0.8), ("siren", 0.5, (2, 4), 0.03, 1.0)]),
    "tubestation": (1.0, 0.06, [("engine", 2, (5, 12), 0.08, 0.7), ("siren", 1.5, (2, 4), 0.05, 1.2),
                                ("flute", 6, (0.5, 3), 0.04, 0.6), ("drum", 3, (0.3, 1), 0.04, 1.0)]),
}

__all__ = ["generate_esc50", "generate_dcase", "esc50_categories", "write_wav", "parallel_map", "SCENES",
           "VARIANTS"]


def parallel_map(fn: Callable, jobs: Sequence, workers: int | None = None) -> list:
    """``[fn(j) for j in jobs]``, in ``workers`` processes (default: up to 2 CPUs).

    Results keep the order of ``jobs``; each job is seeded by itself, so the output does
    not depend on the number of workers. Workers are forked where possible (fast, and works
    when ``__main__`` is not importable, e.g. a script on stdin); a crashed worker raises
    instead of hanging.
    """
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(jobs)))
    if workers == 1:
        return [fn(j) for j in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return list(pool.map(fn, jobs))


def write_wav(path, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio, shape (n,) or (channels, n), as 16-bit PCM WAV, atomically."""
    audio = np.atleast_2d(audio)
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").T.copy()
    with atomic_file(path) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(audio.shape[0])
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.tobytes())


def esc50_categories(n_classes: int) -> list[str]:
    """Category names: the 8 families, then their variants (flute_low, ..., warble_low_far)."""
    names = [f"{fam}_{v[0]}" if v[0] else fam for v in VARIANTS for fam in CLASS_NAMES]
    if not 1 <= n_classes <= len(names):
        raise ValueError(f"n_classes must be in 1..{len(names)}, got {n_classes}")
    return names[:n_classes]


def _esc50_clip(target: int, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One mono clip of category ``target``: a family variant, maybe partial, over light noise."""
    family, variant = target % len(CLASS_NAMES), VARIANTS[target // len(CLASS_NAMES)]
    _, pitch, rate, reverb, street = variant
    n = int(round(seconds * sr))
    x = render_sound(family, seconds, sr, rng, pitch=pitch, rate=rate, level=0.15)
    if reverb:                                     # distant: diffuse tail, little direct sound
        x = reverberate(x, reverb, sr, rng)
    if rng.random() < 0.3:                         # event covers only part of the clip
        span = rng.uniform(min(1.5, 0.5 * seconds), seconds) * sr
        start = int(rng.uniform(0, n - span))
        ramp = np.clip(np.minimum(np.arange(n) - start, start + span - np.arange(n)) / (0.05 * sr), 0, 1)
        x = x * ramp.astype(np.float32)
    noise_level = street if street else rng.uniform(0.01, 0.04)
    x = x + 0.15 * noise_level * colored_noise(n, rng, rng.uniform(0.5, 2.0), sample_rate=sr)
    return normalize(x, float(rng.uniform(0.05, 0.2)), peak=0.95)


def generate_esc50(root, n_classes: int = 10, clips_per_class: int = 10, seed: int = 0,
                   seconds: float = 5.0, sample_rate: int = 44100,
                   workers: int | None = None) -> pd.DataFrame:
    """Write an ESC-50-layout set under ``root`` (replaced atomically); returns the meta table.

    Clip ``i`` of each class goes to fold ``i % 5 + 1``; consecutive clips of a fold may be
    further takes (B, C) of the same source id. Every fifth class is marked ``esc10``.
    ``meta/groups.csv`` gives each category's family (``flute_low`` -> ``flute``).
    """
    if clips_per_class < 5:
        raise ValueError("clips_per_class must be >= 5 so every fold holds every class")
    categories = esc50_categories(n_classes)
    id_rng = np.random.default_rng([seed, 50])
    src_ids = id_rng.choice(np.arange(10000, 600000), n_classes * clips_per_class, replace=False)
    rows, jobs = [], []
    for target, category in enumerate(categories):
        last: dict[int, tuple[int, str]] = {}            # fold -> (src id, take) of previous clip
        for i in range(clips_per_class):
            fold = i % 5 + 1
            src, take = int(src_ids[target * clips_per_class + i]), "A"
            if fold in last and last[fold][1] < "C" and id_rng.random() < 0.3:
                src, take = last[fold][0], chr(ord(last[fold][1]) + 1)
            last[fold] = (src, take)
            name = f"{fold}-{src}-{take}-{target}.wav"
            rows.append((name, fold, target, category, target % 5 == 0, src, take))
            jobs.append((name, target, i))
    with atomic_dir(root) as tmp:
        (Path(tmp) / "audio").mkdir()
        (Path(tmp) / "meta").mkdir()
        parallel_map(_write_esc50_clip, [(str(Path(tmp) / "audio" / name), target, i, seed, seconds,
                                          sample_rate) for name, target, i in jobs], workers)
        meta = pd.DataFrame(rows, columns=ESC50_COLUMNS).sort_values("filename", ignore_index=True)
        meta.to_csv(Path(tmp) / "meta" / "esc50.csv", index=False)
        # the optional groups file of dmc.io.evalsets.read_esc50: each category's sound family, so
        # the evaluation also scores family accuracy (variants of one family are one group)
        pd.DataFrame({"category": categories,
                      "group": [CLASS_NAMES[t % len(CLASS_NAMES)] for t in range(len(categories))]}
                     ).to_csv(Path(tmp) / "meta" / "groups.csv", index=False)
    return meta


def _write_esc50_clip(job: tuple) -> None:
    path, target, i, seed, seconds, sr = job
    write_wav(path, _esc50_clip(target, seconds, sr, np.random.default_rng([seed, target, i])), sr)


def _add_events(x: np.ndarray, family: str, rate_per_min: float, durations, level: float, pitch: float,
                sr: int, rng: np.random.Generator) -> None:
    """Add one source of a scene to the stereo mix ``x`` (2, n) in place.

    ``rate_per_min == 0`` means always on (slow level changes, fixed pan); otherwise a
    Poisson number of events, each a slice of one continuous rendering of the family with
    50 ms ramps, its own gain and pan. Only the covered time is synthesised.
    """
    n = x.shape[1]
    cls = CLASS_NAMES.index(family)
    pitch, level = pitch * rng.uniform(0.9, 1.1), level * rng.uniform(0.7, 1.4)
    if rate_per_min == 0:
        pan = rng.uniform(0.3, 0.7)
        t = np.arange(n, dtype=np.float32) / sr
        swell = (1 + 0.2 * P.sin(2 * np.pi * rng.uniform(0.02, 0.1) * t + rng.uniform(0, 6.3))).astype(np.float32)
        s = render_sound(cls, n / sr, sr, rng, pitch=pitch, level=level) * swell
        x += np.array([[math.cos(pan * math.pi / 2)], [math.sin(pan * math.pi / 2)]], np.float32) * s
        return
    k = rng.poisson(rate_per_min * n / sr / 60 * rng.uniform(0.7, 1.3))
    starts = (rng.uniform(-0.5, n / sr, k) * sr).astype(np.int64)
    ramp = max(1, int(0.05 * sr))
    lengths = (rng.uniform(*durations, k) * sr).astype(np.int64) + 2 * ramp
    gains, pans = rng.uniform(0.5, 1.0, k), rng.uniform(0.05, 0.95, k)
    keep = (starts + lengths > 0) & (starts < n)
    if not keep.any():
        return
    starts, lengths, gains, pans = starts[keep], lengths[keep], gains[keep], pans[keep]
    stream = render_sound(cls, lengths.sum() / sr, sr, rng, pitch=pitch, level=level)
    offset = 0
    for i0, m, g, pan in zip(starts, lengths, gains, pans):
        pos = np.arange(m)
        shape = np.minimum(1.0, np.minimum(pos + 1, m - pos) / ramp).astype(np.float32)
        piece = stream[offset:offset + m] * shape * np.float32(g)
        offset += m
        lo, hi = max(0, i0), min(n, i0 + m)
        x[0, lo:hi] += np.float32(math.cos(pan * math.pi / 2)) * piece[lo - i0:hi - i0]
        x[1, lo:hi] += np.float32(math.sin(pan * math.pi / 2)) * piece[lo - i0:hi - i0]


def _dcase_recording(scene: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One stereo recording (2, n) of ``scene``: coloured background noise plus its sources."""
    exponent, noise_level, sources = SCENE_RECIPES[scene]
    n = int(round(seconds * sr))
    noise = colored_noise(n, rng, exponent, channels=2, sample_rate=sr, lo=20.0)
    x = noise_level * rng.uniform(0.7, 1.4) * (0.8 * noise + 0.6 * noise[::-1])   # partly correlated
    for family, rate, durations, level, pitch in sources:
        _add_events(x, family, rate, durations, level, pitch, sr, rng)
    peak = float(np.max(np.abs(x))) + 1e-12
    return (x * min(1.0, 0.95 / peak)).astype(np.float32)


def generate_dcase(root, recordings_per_scene: int = 4, seconds: float = 30.0, seed: int = 0,
                   sample_rate: int = 44100, workers: int | None = None) -> pd.DataFrame:
    """Write a DCASE2013-scenes-layout set under ``root`` (replaced atomically).

    Half of each scene's recordings (chosen at random) go to ``train.txt``, the rest to
    ``test.txt``. Returns a table (file, scene, split).
    """
    if recordings_per_scene < 2 or recordings_per_scene % 2:
        raise ValueError("recordings_per_scene must be even and >= 2")
    rows = []
    for si, scene in enumerate(SCENES):
        train = set(np.random.default_rng([seed, si, 1 << 20]).permutation(recordings_per_scene)
                    [: recordings_per_scene // 2].tolist())
        for r in range(recordings_per_scene):
            rows.append((f"audio/{scene}{r + 1:02d}.wav", scene, "train" if r in train else "test", si, r))
    with atomic_dir(root) as tmp:
        (Path(tmp) / "audio").mkdir()
        parallel_map(_write_dcase_recording, [(str(Path(tmp) / rel), scene, si, r, seed, seconds, sample_rate)
                                              for rel, scene, _, si, r in rows], workers)
        for split in ("train", "test"):
            lines = [f"{rel}\t{scene}\n" for rel, scene, sp, _, _ in rows if sp == split]
            (Path(tmp) / f"{split}.txt").write_text("".join(lines))
    return pd.DataFrame([row[:3] for row in rows], columns=["file", "scene", "split"])


def _write_dcase_recording(job: tuple) -> None:
    path, scene, si, r, seed, seconds, sr = job
    write_wav(path, _dcase_recording(scene, seconds, sr, np.random.default_rng([seed, si, r])), sr)
