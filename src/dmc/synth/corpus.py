"""The training corpus's clips, written together: :func:`generate_videos` (``dmc synth videos``).

Apart from :mod:`.videos` (one clip: plan, render, encode) because ``synth.mixtures`` draws some of
the clips from the multi-source corpus's maker (:mod:`.multisource`), which builds on :mod:`.videos`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_dir
from .evalsets import parallel_map
from .multisource import MIXTURES, make_training_clip, training_jobs
from .videos import BOX_COLUMNS, CLIP_COLUMNS, CONTROLS, _containers, _make_clip


def generate_videos(out_dir, ground_truth_dir, n_videos: int = 96, seconds: float = 8.0,
                    width: int = 128, height: int = 128, fps: int = 10, audio_rate: int = 44100,
                    other_containers: float = 0.1, max_sources: int = 3, max_distractors: int = 2,
                    seed: int = 0, workers: int | None = None, control: str = "none",
                    variants: bool = False, portable_audio: bool = False, mixtures: str = "none") -> pd.DataFrame:
    """Write ``n_videos`` clips into ``out_dir`` and their ground truth into ``ground_truth_dir``.

    Clips are ``seconds`` long, ``width`` x ``height`` at ``fps``, audio at ``audio_rate``
    (48 kHz for WebM/Opus), mono or stereo at random; a share ``other_containers`` is
    WebM/MKV, the rest MP4. Each has 1..``max_sources`` sounding and 0..``max_distractors``
    silent objects of distinct classes. Both folders are replaced atomically; ``out_dir``
    holds nothing but the videos. ``workers`` processes encode clips in parallel (default:
    up to 2, the CPU count); the bytes written do not depend on it. Returns the
    ``clips.csv`` table (columns ``CLIP_COLUMNS``).

    ``control="no_objects"``: the shortcut control. Every clip is made as usual (same audio,
    background, silent distractors) but its sounding objects are not drawn (nor boxed), so
    nothing in the frames tells which sound goes with them: a model trained on it must
    score chance-level audiovisual correspondence, or the generator has a shortcut.

    ``variants``: every object is one of its family's variants (:data:`LOOKS`), heard and
    drawn as such; without it every object sounds at its family's own pitch and rate, dry.

    ``portable_audio``: the WebM clips' audio is Vorbis (FFmpeg's encoder, C code; a mono clip as two
    equal channels) instead of Opus from libopus, whose output depends on the CPU
    (:data:`PORTABLE_AUDIO`); every other byte of every clip stays the same.

    ``mixtures`` (``synth.mixtures``): ``"none"`` (the default: every clip as above);
    ``"music_synthetic"``: a share of the clips are the multi-source corpus's mixtures and duets
    (:func:`.multisource.training_jobs`; two sounding objects each, the mixtures with silent ones of
    classes that sound elsewhere), the others as above, each from its own ``(seed, index)``.
    """
    if mixtures not in MIXTURES:
        raise ValueError(f"mixtures must be one of {MIXTURES}, got {mixtures!r}")
    if mixtures != "none" and control != "none":
        raise ValueError("synth.mixtures does not combine with synth.control (the control hides sounding objects)")
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {control!r}")
    if n_videos < 1:
        raise ValueError("n_videos must be >= 1")
    if width % 2 or height % 2:
        raise ValueError("width and height must be even (yuv420p)")
    kinds = _containers(n_videos, other_containers, np.random.default_rng([seed, 1 << 30]))
    with atomic_dir(out_dir) as vtmp, atomic_dir(ground_truth_dir) as gtmp:
        jobs = [(str(vtmp), i, kinds[i], seed, seconds, width, height, int(fps), int(audio_rate),
                 max_sources, max_distractors, control, bool(variants), bool(portable_audio))
                for i in range(n_videos)]
        if mixtures == "none":
            results = parallel_map(_make_clip, jobs, workers)
        else:
            results = parallel_map(make_training_clip, training_jobs(jobs, mixtures, seed), workers)
        clips = pd.DataFrame([r for r, _ in results], columns=CLIP_COLUMNS)
        boxes = pd.DataFrame([b for _, bs in results for b in bs], columns=BOX_COLUMNS)
        clips.to_csv(Path(gtmp) / "clips.csv", index=False)
        boxes.to_csv(Path(gtmp) / "boxes.csv", index=False)
    return clips
