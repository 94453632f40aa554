"""Regenerate a sample of the embedded default and print the SHA-256 of every byte it makes.

Run by tests/test_determinism.py in subprocesses with other CPU kernels (NPY_DISABLE_CPU_FEATURES,
ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS) and other thread counts: the digests must not
change. The sample: 3 training clips (MP4, WebM, MKV) and their decoded shard, the WebM clip as
``synth.portable_audio`` makes it (Vorbis) and its shard, ESC-50-like clips of 4 categories (two
with reverberation), 4 DCASE-like recordings (2 scenes x train/test), 2 ESC-10-layout clips as OGG
Opus and 2 as FLAC (``synth.portable_audio``), with the eval-set log-mels of all three.

Usage: python determinism_sample.py OUT_DIR WORKERS TORCH_THREADS
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def main(out: Path, workers: int, torch_threads: int) -> dict[str, str]:
    import torch

    from dmc.evaluation.features import evalset_logmel
    from dmc.pipeline.params import load_params
    from dmc.io.shards import write_shard, list_videos
    from dmc.synth import evalsets, generate_videos

    decode = load_params(Path(__file__).resolve().parents[1] / "params.yaml")["decode"]
    generate_videos(out / "videos", out / "gt", n_videos=3, seconds=4.0, width=64, height=64, fps=10,
                    audio_rate=44100, other_containers=0.67, seed=0, workers=workers)
    write_shard(out / "decoded" / "shard-00000", out / "videos", list_videos(out / "videos"), decode)
    # synth.portable_audio: the WebM clip with Vorbis instead of libopus's Opus, and its shard
    from dmc.synth.videos import _make_clip
    (out / "videos_portable").mkdir()
    _make_clip((str(out / "videos_portable"), 0, "webm", 0, 4.0, 64, 64, 10, 44100, 3, 2, "none", False, True))
    write_shard(out / "decoded" / "shard-00001", out / "videos_portable", list_videos(out / "videos_portable"), decode)
    torch.set_num_threads(torch_threads)     # write_shard pins 1 thread; the eval sets use these

    esc = out / "esc50"
    (esc / "audio").mkdir(parents=True)
    (esc / "meta").mkdir()
    cats = evalsets.esc50_categories(32)
    rows = []
    for fold, target in enumerate((0, 9, 24, 31), start=1):    # 24, 31: reverberant variants
        name = f"{fold}-{100 + target}-A-{target}.wav"
        evalsets._write_esc50_clip((str(esc / "audio" / name), target, 0, 1, 5.0, 44100))
        rows.append((name, fold, target, cats[target], False, 100 + target, "A"))
    pd.DataFrame(rows, columns=evalsets.ESC50_COLUMNS).to_csv(esc / "meta" / "esc50.csv", index=False)
    dcase = out / "dcase"
    (dcase / "audio").mkdir(parents=True)
    for split in ("train", "test"):
        lines = []
        for si in (0, 8):                                      # bus, tube
            rel = f"audio/{evalsets.SCENES[si]}{1 if split == 'train' else 2:02d}.wav"
            evalsets._write_dcase_recording((str(dcase / rel), evalsets.SCENES[si], si, len(lines), 2, 6.0, 44100))
            lines.append(f"{rel}\t{evalsets.SCENES[si]}\n")
        (dcase / f"{split}.txt").write_text("".join(lines))
    esc10 = out / "esc10" / "001 - Flute"                        # the ESC-10 release layout (OGG Opus)
    esc10.mkdir(parents=True)
    from dmc.synth.esc10 import write_flac, write_ogg
    for fold in (1, 2):
        clip = evalsets._esc50_clip(0, 5.0, 44100, np.random.default_rng([1, 0, fold]))
        write_ogg(esc10 / f"{fold}-{200 + fold}-A.ogg", clip, 44100)
        pcm = np.round(np.clip(clip, -1, 1) * 32767) / 32768          # as read back from the 16-bit WAV
        write_flac(esc10 / f"{fold}-{300 + fold}-A.flac", pcm, 44100)  # synth.portable_audio
    for name in ("esc50", "esc10", "dcase"):
        logmel, _ = evalset_logmel(name, out / name, decode)
        np.save(out / f"{name}_logmel.npy", logmel)
    return digests(out)


if __name__ == "__main__":
    out, workers, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(main(out, workers, threads)))
