"""Multi-source clips where separation is required, with per-source audio stems (issue 33).

Two kinds of clip, after the evaluation sets of DSOL (Hu et al., NeurIPS 2020), which scores DMC on
MUSIC-Synthetic and MUSIC-Duet:

* ``mixture`` (MUSIC-Synthetic): :data:`MIXTURE_OBJECTS` objects of distinct classes in one frame,
  exactly two of them sounding at once with their audio mixed, the others silent;
* ``duet`` (MUSIC-Duet): exactly two objects, both sounding.

The sounding pairs come from a schedule (:func:`schedule`): consecutive random perfect matchings of
the classes, so every class sounds once in each successive block of ``len(CLASS_NAMES) / 2``
mixture clips. A silent object's class therefore sounds in other clips: a map that lights up every
object of a class it has heard somewhere fails on these clips; only one that follows the clip's
own audio succeeds.

Every clip's audio is **exactly the float32 sum of its stems** before encoding (:func:`mix`): one
stem per sounding object (that source alone, panned as in the mixture) and one ``background`` stem
(the low-level noise every clip of the corpus carries), all scaled by the same peak gain and
rounded to 16-bit values. :func:`generate_multisource` writes the stems as 16-bit FLAC (lossless;
fixed predictors: integer code, the same bytes on every CPU), so the stems read back sum exactly
to the samples the clip's audio encoder was given.

Looks, sounds, containers and encoding are those of :mod:`.videos` (``_place``, ``_encode``, ...);
each clip is determined by ``(seed, clip index)`` and the corpus schedule.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_dir, atomic_file
from .evalsets import parallel_map
from .sounds import CLASS_NAMES, colored_noise, render_sound, reverberate, rms_of
from .visuals import Background, draw_object, object_state
from .videos import (BOX_COLUMNS, CLIP_COLUMNS, CONTAINERS, LOOKS, PORTABLE_AUDIO, SOUNDS, _containers, _encode,
                     _place)

KINDS = ("mixture", "duet")
#: objects in a mixture clip: MUSIC-Synthetic's 2 x 2 grid of four solo instruments
MIXTURE_OBJECTS = 4
#: sounding objects in every clip of either kind
SOUNDING = 2
#: share of duets among the clips of a multi-source corpus (the rest are mixtures)
DUET_SHARE = 0.25
#: share of the training clips made as multi-source clips with ``synth.mixtures: music_synthetic``
MIXTURE_SHARE = 0.5
MIXTURES = ("none", "music_synthetic")
MULTI_CLIP_COLUMNS = [*CLIP_COLUMNS, "kind", "background_stem"]
OBJECT_COLUMNS = ["video", "object_id", "class", "sounding", "variant", "stem"]
BACKGROUND = "background"
# separate random streams of a corpus (clip i draws from [seed, i]; containers from [seed, 1 << 30])
_SCHEDULE_STREAM = (1 << 30) + 1
_TRAINING_STREAM = (1 << 30) + 2

__all__ = ["KINDS", "MIXTURES", "generate_multisource", "schedule", "mix", "render_clip", "training_jobs",
           "make_training_clip", "MULTI_CLIP_COLUMNS", "OBJECT_COLUMNS"]


def _pairs(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``n`` pairs of distinct classes: consecutive random perfect matchings of the classes (each
    block of ``len(CLASS_NAMES) // 2`` pairs holds every class once)."""
    out: list[tuple[int, int]] = []
    while len(out) < n:
        p = rng.permutation(len(CLASS_NAMES))
        out += [(int(min(p[2 * j], p[2 * j + 1])), int(max(p[2 * j], p[2 * j + 1]))) for j in range(len(p) // 2)]
    return out[:n]


def schedule(n: int, seed: int, duet_share: float = DUET_SHARE) -> list[tuple[str, tuple[int, int]]]:
    """(kind, sounding class pair) of each of ``n`` clips: ``round(duet_share * n)`` duets at random
    places, the rest mixtures; each kind's pairs in clip order from :func:`_pairs`."""
    rng = np.random.default_rng([seed, _SCHEDULE_STREAM])
    k = min(n, int(round(duet_share * n)))
    kinds = ["mixture"] * n
    for i in rng.permutation(n)[:k]:
        kinds[int(i)] = "duet"
    pairs = {kind: iter(_pairs(kinds.count(kind), rng)) for kind in KINDS}
    return [(kind, next(pairs[kind])) for kind in kinds]


def plan_multi_clip(rng: np.random.Generator, width: int, height: int, kind: str, pair: tuple[int, int],
                    variants: bool = False) -> list[dict]:
    """Objects of one clip (as :func:`.videos.plan_clip` gives them): the two sounding classes of
    ``pair`` and, in a mixture, ``MIXTURE_OBJECTS - 2`` silent objects of other classes drawn at random."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    others = [c for c in range(len(CLASS_NAMES)) if c not in pair]
    silent = [int(c) for c in rng.permutation(others)[:MIXTURE_OBJECTS - SOUNDING]] if kind == "mixture" else []
    classes = [*pair, *silent]
    names = [list(LOOKS)[int(rng.integers(len(LOOKS)))] for _ in classes] if variants else [""] * len(classes)
    places = _place(len(classes), width, height, rng, [LOOKS[v][0] for v in names])
    objs = [{"cls": int(c), "sounding": i < SOUNDING, "center": (x, y), "size": r, "state": object_state(rng),
             "variant": v, "opacity": LOOKS[v][1]} for i, (c, (x, y, r), v) in enumerate(zip(classes, places, names))]
    objs = [objs[int(j)] for j in rng.permutation(len(objs))]     # drawing order and ids at random
    for i, o in enumerate(objs):
        o["id"] = i
    return objs


def mix(stems: list[np.ndarray]) -> np.ndarray:
    """The clip's audio: the stems summed in float32, in the order given (sources by object id,
    then the background)."""
    out = np.zeros_like(stems[0], dtype=np.float32)
    for s in stems:
        out += s
    return out


def render_stems(objs: list[dict], seconds: float, sr: int, channels: int, width: int,
                 rng: np.random.Generator) -> dict:
    """``{object id: stem, ..., "background": noise}``, each (channels, n) float32, all scaled by
    one gain so that the peak of their sum is <= 0.9 (what :func:`.videos._render_audio` does to
    its mix), then rounded to 16-bit values (:func:`quantize`), so that the FLAC stems hold them
    exactly and their float32 sum is exact."""
    n = int(round(seconds * sr))
    stems: dict = {}
    for o in sorted(objs, key=lambda o: o["id"]):
        if not o["sounding"]:
            continue
        pitch, rate, reverb = SOUNDS[o["variant"]]
        s = render_sound(o["cls"], seconds, sr, rng, pitch=pitch, rate=rate)
        if reverb:
            s = reverberate(s, reverb, sr, rng, level=rms_of(s))
        stem = np.zeros((channels, n), np.float32)
        if channels == 1:
            stem[0] = s
        else:                                              # constant-power pan by x position
            p = 0.15 + 0.7 * o["center"][0] / width
            stem[0] = np.float32(math.cos(p * math.pi / 2)) * s
            stem[1] = np.float32(math.sin(p * math.pi / 2)) * s
        stems[o["id"]] = stem
    noise = colored_noise(n, rng, rng.uniform(0.5, 1.5), channels=channels, sample_rate=sr)
    stems[BACKGROUND] = (np.float32(rng.uniform(0.003, 0.015)) * noise).astype(np.float32)
    peak = float(np.max(np.abs(mix(list(stems.values()))))) + 1e-12
    gain = np.float32(min(1.0, 0.9 / peak))
    return {k: quantize(v * gain) for k, v in stems.items()}


def render_clip(index: int, seed: int, kind: str, pair: tuple[int, int], container: str, seconds: float,
                width: int, height: int, audio_rate: int, variants: bool = False,
                portable_audio: bool = False) -> dict:
    """Everything drawn for clip ``index`` before any frame: ``objs``, ``channels``, ``rate``,
    ``stems`` ({object id | "background": (channels, n) float32}), ``audio`` (their :func:`mix`,
    what the encoder gets) and ``rng`` (its state, for the background and frames)."""
    rng = np.random.default_rng([seed, index])
    sr = CONTAINERS[container][4] or audio_rate
    objs = plan_multi_clip(rng, width, height, kind, pair, variants)
    channels = int(rng.integers(1, 3))
    stems = render_stems(objs, seconds, sr, channels, width, rng)
    if portable_audio and container in PORTABLE_AUDIO and channels < PORTABLE_AUDIO[container][2]:
        channels = PORTABLE_AUDIO[container][2]           # mono written as identical channels
        stems = {k: np.repeat(v, channels, axis=0) for k, v in stems.items()}
    return {"objs": objs, "channels": channels, "rate": sr, "stems": stems, "audio": mix(list(stems.values())),
            "rng": rng}


def stem_name(video: str, key) -> str:
    """Path of a stem relative to the stems folder: ``<video stem>/<object id>_<class>.flac`` or
    ``<video stem>/background.flac``."""
    return f"{Path(video).stem}/{key}.flac"


def quantize(audio: np.ndarray) -> np.ndarray:
    """Float audio -> the nearest 16-bit values (k / 32768, clipped), float32: what a 16-bit FLAC
    file holds exactly, and sums of a few of them are exact in float32."""
    return (np.clip(np.round(np.asarray(audio, np.float64) * 32768), -32768, 32767) / 32768).astype(np.float32)


def write_stem(path: Path, audio: np.ndarray, sr: int) -> None:
    """(channels, n) float32 holding 16-bit values (:func:`quantize`) -> 16-bit FLAC, atomically:
    lossless, and with fixed predictors an all-integer encoder (as :func:`.esc10.write_flac`), so
    its bytes and decoded samples are the same on every CPU."""
    import av

    from dmc.io.avcpu import ffmpeg_portable

    pcm = np.round(np.asarray(audio, np.float64) * 32768).clip(-32768, 32767).astype(np.int16)
    layout = "mono" if pcm.shape[0] == 1 else "stereo"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        with ffmpeg_portable(), av.open(str(tmp), "w", format="flac", options={"fflags": "+bitexact"}) as out:
            stream = out.add_stream("flac", rate=sr, layout=layout, format="s16")
            stream.codec_context.thread_count = 1
            stream.codec_context.options = {"flags": "+bitexact", "lpc_type": "fixed"}
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.T).reshape(1, -1), format="s16",
                                               layout=layout)
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)


def _make_multi_clip(args: tuple) -> tuple[dict, list[tuple], list[tuple]]:
    """Render and write multi-source clip ``index`` (and, given ``stems_dir``, its stems); returns
    (clip row, box rows, object rows)."""
    (folder, stems_dir, index, container, seed, kind, pair, seconds, width, height, fps, audio_rate,
     variants, portable_audio) = args
    ext = CONTAINERS[container][0]
    name = f"vid_{index:05d}.{ext}"
    clip = render_clip(index, seed, kind, tuple(pair), container, seconds, width, height, audio_rate, variants,
                       portable_audio)
    objs, rng, sr = clip["objs"], clip["rng"], clip["rate"]
    background = Background(width, height, rng)
    n_frames = int(round(seconds * fps))
    boxes: list[tuple] = []

    def frames():
        for k in range(n_frames):
            t = k / fps
            img = background.frame(t)
            for o in objs:
                box = draw_object(img, o["cls"], o["center"], o["size"], t, o["state"], o["opacity"])
                boxes.append((name, k, round(t, 6), o["id"], CLASS_NAMES[o["cls"]], int(o["sounding"]), *box))
            yield img

    with atomic_file(Path(folder) / name) as tmp:
        _encode(tmp, container, frames(), clip["audio"], sr, fps, width, height, portable_audio)
    objects = []
    for o in objs:
        key = f"{o['id']}_{CLASS_NAMES[o['cls']]}"
        stem = stem_name(name, key) if o["sounding"] else ""
        if stem and stems_dir is not None:
            write_stem(Path(stems_dir) / stem, clip["stems"][o["id"]], sr)
        objects.append((name, o["id"], CLASS_NAMES[o["cls"]], int(o["sounding"]), o["variant"], stem))
    if stems_dir is not None:
        write_stem(Path(stems_dir) / stem_name(name, BACKGROUND), clip["stems"][BACKGROUND], sr)
    sounding = [CLASS_NAMES[c] for c in sorted(pair)]
    row = {"video": name, "seconds": float(seconds), "n_sources": len(sounding), "sounding_classes": ";".join(sounding),
           "container": container, "audio_channels": clip["channels"], "audio_rate": sr,
           "n_distractors": len(objs) - len(sounding), "kind": kind,
           "background_stem": stem_name(name, BACKGROUND) if stems_dir is not None else ""}
    return row, boxes, objects


def generate_multisource(out_dir, stems_dir, ground_truth_dir, n_videos: int = 160, seconds: float = 8.0,
                         width: int = 128, height: int = 128, fps: int = 10, audio_rate: int = 44100,
                         other_containers: float = 0.1, seed: int = 2000, duet_share: float = DUET_SHARE,
                         variants: bool = False, portable_audio: bool = False,
                         workers: int | None = None) -> pd.DataFrame:
    """Write a multi-source corpus: ``n_videos`` clips into ``out_dir`` (nothing else), their stems
    into ``stems_dir`` (:func:`stem_name`) and their ground truth into ``ground_truth_dir``:

    * ``clips.csv``: :data:`MULTI_CLIP_COLUMNS` (those of the training corpus, ``kind`` and the
      clip's ``background_stem``);
    * ``boxes.csv``: one row per object per frame (:data:`.videos.BOX_COLUMNS`: class, sounding flag,
      pixel box with exclusive x1/y1), as for the training corpus;
    * ``objects.csv``: one row per object (:data:`OBJECT_COLUMNS`): class, sounding flag, variant and,
      for a sounding object, its stem.

    Clips, containers and encoding as :func:`.corpus.generate_videos` makes them; the three folders
    are replaced atomically; the bytes do not depend on ``workers``. Returns the clips table.
    """
    if n_videos < 1:
        raise ValueError("n_videos must be >= 1")
    if width % 2 or height % 2:
        raise ValueError("width and height must be even (yuv420p)")
    kinds = _containers(n_videos, other_containers, np.random.default_rng([seed, 1 << 30]))
    plan = schedule(n_videos, seed, duet_share)
    with atomic_dir(out_dir) as vtmp, atomic_dir(stems_dir) as stmp, atomic_dir(ground_truth_dir) as gtmp:
        jobs = [(str(vtmp), str(stmp), i, kinds[i], seed, plan[i][0], plan[i][1], seconds, width, height, int(fps),
                 int(audio_rate), bool(variants), bool(portable_audio)) for i in range(n_videos)]
        results = parallel_map(_make_multi_clip, jobs, workers)
        clips = pd.DataFrame([r for r, _, _ in results], columns=MULTI_CLIP_COLUMNS)
        clips.to_csv(Path(gtmp) / "clips.csv", index=False)
        pd.DataFrame([b for _, bs, _ in results for b in bs], columns=BOX_COLUMNS).to_csv(Path(gtmp) / "boxes.csv",
                                                                                          index=False)
        pd.DataFrame([o for _, _, os_ in results for o in os_], columns=OBJECT_COLUMNS).to_csv(
            Path(gtmp) / "objects.csv", index=False)
    return clips


# -- the training-corpus option synth.mixtures ---------------------------------------------------------
def training_jobs(jobs: list[tuple], mixtures: str, seed: int) -> list[tuple]:
    """The training corpus's clip jobs (:func:`.videos._make_clip` arguments) with ``mixtures``:
    ``"none"`` leaves every job as it is; ``"music_synthetic"`` makes a share :data:`MIXTURE_SHARE`
    of the clips (chosen at random from ``seed``) multi-source clips of the kinds and pairs of
    :func:`schedule` (no stems written). Each job becomes ``(kind, args)`` for :func:`make_training_clip`."""
    if mixtures not in MIXTURES:
        raise ValueError(f"mixtures must be one of {MIXTURES}, got {mixtures!r}")
    out = [("plain", j) for j in jobs]
    if mixtures == "none":
        return out
    n = len(jobs)
    order = np.random.default_rng([seed, _TRAINING_STREAM]).permutation(n)
    chosen = sorted(int(i) for i in order[:int(round(MIXTURE_SHARE * n))])
    plan = schedule(len(chosen), seed)
    for (kind, pair), i in zip(plan, chosen):
        (folder, index, container, seed_, seconds, width, height, fps, audio_rate, _, _, _, variants,
         portable_audio) = jobs[i]
        out[i] = ("multi", (folder, None, index, container, seed_, kind, pair, seconds, width, height, fps,
                            audio_rate, variants, portable_audio))
    return out


def make_training_clip(job: tuple) -> tuple[dict, list[tuple]]:
    """One training clip of :func:`training_jobs`: (clip row in :data:`.videos.CLIP_COLUMNS`, box rows)."""
    from .videos import _make_clip

    kind, args = job
    if kind == "plain":
        return _make_clip(args)
    row, boxes, _ = _make_multi_clip(args)
    return {k: row[k] for k in CLIP_COLUMNS}, boxes
