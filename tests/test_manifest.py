"""Per-file manifests and `dmc verify` (src/dmc/io/manifest.py).

A tiny sample of the embedded default (three clips of the real generator: MP4, WebM, MKV; an
ESC-50-like clip; a log-mel array) is written as a repository's data/ folders and its manifest;
then one byte of a video packet, one byte of the container, one audio sample (of a WAV, and of a
clip's audio before encoding) and one array value are changed, and verify must name the file and
the part. The committed manifests are checked against dvc.lock without the data: DVC's .dir
hash of every output folder is rebuilt from the manifest's md5 column.
"""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, load_default_params

from dmc.io import manifest as M


def _write_sample(root: Path) -> None:
    from dmc.synth import evalsets, generate_videos

    synth = root / "data" / "synth"
    generate_videos(synth / "videos", synth / "ground_truth", n_videos=3, seconds=2.0, width=64, height=64,
                    fps=10, other_containers=0.67, seed=0, workers=1)
    (synth / "esc50" / "audio").mkdir(parents=True)
    evalsets._write_esc50_clip((str(synth / "esc50" / "audio" / "1-100-A-0.wav"), 0, 0, 1, 1.0, 44100))
    (root / "data" / "decoded").mkdir(parents=True)
    (root / "data" / "decoded" / "summary.json").write_text('{"videos": 3}\n')
    (root / "data" / "evalsets" / "esc50").mkdir(parents=True)
    np.save(root / "data" / "evalsets" / "esc50" / "logmel.npy",
            np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32))
    for test_folder in ("synth_test/ground_truth", "decoded_test"):      # the test corpus's folders
        (root / "data" / test_folder).mkdir(parents=True)
        (root / "data" / test_folder / "index.csv").write_text("video\nvid_00000.mp4\n")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    _write_sample(root)
    params = load_default_params()
    M.write_all(root, params)
    return root, params


@pytest.fixture
def repo(sample, tmp_path):
    """A fresh copy of the sample repository (each test changes it) and the pristine original."""
    root, params = sample
    copy = tmp_path / "repo"
    shutil.copytree(root, copy)
    return copy, root, params


def _by_path(diffs):
    return {d.path: d for d in diffs}


def test_unchanged_files_match(repo):
    root, _, params = repo
    notes, diffs = M.verify(root, params)
    assert diffs == []
    assert notes[0].startswith("data/synth: ") and "0 differ" in notes[0]


def test_a_byte_of_a_video_packet_is_placed_in_the_video_stream(repo):
    import av

    root, _, params = repo
    clip = next((root / "data" / "synth" / "videos").glob("*.mp4"))
    with av.open(str(clip)) as c:
        packet = next(p for p in c.demux(c.streams.video[0]) if p.size > 100 and p.pos is not None)
        pos = packet.pos + packet.size // 2
    data = bytearray(clip.read_bytes())
    data[pos] ^= 0x40
    clip.write_bytes(bytes(data))
    diffs = _by_path(M.verify(root, params)[1])
    rel = f"data/synth/videos/{clip.name}"
    assert list(diffs) == [rel]
    assert diffs[rel].kind == "video"
    assert "video stream v0 (h264) differs" in diffs[rel].detail and "equal: a1 (aac)" in diffs[rel].detail


def test_a_container_byte_is_not_taken_for_a_stream(repo):
    root, _, params = repo
    clip = next((root / "data" / "synth" / "videos").glob("*.mp4"))
    data = bytearray(clip.read_bytes())
    assert data[4:8] == b"ftyp"
    data[15] ^= 0x01                     # the ftyp box's minor version: no stream reads it
    clip.write_bytes(bytes(data))
    (d,) = M.verify(root, params)[1]
    assert (d.path, d.kind) == (f"data/synth/videos/{clip.name}", "container")
    assert "every stream's packets equal" in d.detail


def test_one_audio_sample_of_a_wav_is_named_and_measured(repo):
    root, pristine, params = repo
    wav = root / "data" / "synth" / "esc50" / "audio" / "1-100-A-0.wav"
    with wave.open(str(wav), "rb") as fh:
        fmt, frames = fh.getparams(), fh.readframes(fh.getnframes())
    pcm = np.frombuffer(frames, "<i2").copy()
    pcm[1000] += 3
    with wave.open(str(wav), "wb") as fh:
        fh.setparams(fmt)
        fh.writeframes(pcm.tobytes())
    (d,) = M.verify(root, params, reference=pristine)[1]
    assert (d.path, d.kind) == ("data/synth/esc50/audio/1-100-A-0.wav", "audio")
    assert "audio stream a0 (pcm_s16le) differs" in d.detail
    assert "max abs diff 3, 1 of" in d.detail


def test_one_audio_sample_of_a_clip_is_placed_in_its_audio_codec(repo, tmp_path):
    """The same frames with one audio sample changed before encoding: only the audio stream differs."""
    from dmc.synth.videos import _encode

    root, _, params = repo
    clip = root / "data" / "synth" / "videos" / "x.mp4"
    frames = [np.full((64, 64, 3), 40 * k, np.uint8) for k in range(5)]
    audio = (0.1 * np.sin(np.arange(22050) * 0.05))[None].astype(np.float32)
    _encode(clip, "mp4", frames, audio, 44100, 10, 64, 64)
    M.write_all(root, params, names=["synth"])
    reference = tmp_path / "reference"
    shutil.copytree(root, reference)
    changed = audio.copy()
    changed[0, 11025] += 0.01
    _encode(clip, "mp4", frames, changed, 44100, 10, 64, 64)
    (d,) = M.verify(root, params, reference=reference)[1]
    assert (d.path, d.kind) == ("data/synth/videos/x.mp4", "audio")
    assert "audio stream a1 (aac) differs (decoded too)" in d.detail and "equal: v0 (h264)" in d.detail
    assert "max abs diff" in d.detail


def test_an_array_value_is_measured_and_a_header_change_is_told_apart(repo):
    root, pristine, params = repo
    path = root / "data" / "evalsets" / "esc50" / "logmel.npy"
    arr = np.load(path)
    arr[1, 2, 3] += 0.5
    np.save(path, arr)
    (d,) = M.verify(root, params, reference=pristine)[1]
    assert (d.path, d.kind) == ("data/evalsets/esc50/logmel.npy", "array")
    assert "max abs diff 0.5, 1 of 40 values differ" in d.detail
    np.save(path, np.asfortranarray(np.load(pristine / "data" / "evalsets" / "esc50" / "logmel.npy")))
    (d,) = M.verify(root, params)[1]
    assert d.kind == "npy header"


def test_missing_extra_and_other_files(repo):
    root, _, params = repo
    (root / "data" / "decoded" / "summary.json").write_text('{"videos": 4}\n')
    (root / "data" / "decoded" / "new.csv").write_text("a\n")
    wav = root / "data" / "synth" / "esc50" / "audio" / "1-100-A-0.wav"
    wav.unlink()
    kinds = {d.path: d.kind for d in M.verify(root, params)[1]}
    assert kinds == {"data/decoded/summary.json": "bytes", "data/decoded/new.csv": "extra",
                     "data/synth/esc50/audio/1-100-A-0.wav": "missing"}


def test_other_params_are_not_compared(repo):
    from conftest import with_overrides

    root, _, params = repo
    (root / "data" / "decoded" / "summary.json").write_text("changed\n")
    notes, diffs = M.verify(root, with_overrides(params, synth__size="tiny"))
    assert diffs == [] and all("not compared" in n and "synth.size" in n for n in notes)
    (root / "data" / "synth" / "ground_truth" / "clips.csv").write_text("changed\n")
    notes, diffs = M.verify(root, with_overrides(params, decode__n_mels=32))   # the corpus is still the default's
    by_folder = dict(zip(M.ROOTS.values(), notes))
    for folder, note in by_folder.items():     # the corpora depend on synth only, the rest on decode too
        assert ("decode.n_mels" in note) == (folder not in ("data/synth", "data/synth_test")), note
    assert [d.path for d in diffs] == ["data/synth/ground_truth/clips.csv"]


def test_cli_names_the_file_and_exits_1(repo, capsys):
    from conftest import write_params
    from dmc.pipeline.cli import main

    root, _, params = repo
    write_params(root / "params.yaml", params)
    args = ["--params", str(root / "params.yaml"), "verify", "--root", str(root),
            "--manifest-dir", str(root / "results" / "manifest")]
    assert main(args) == 0
    assert "every file matches" in capsys.readouterr().out
    (root / "data" / "decoded" / "summary.json").write_text("changed\n")
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "verify: data/decoded/summary.json: bytes: bytes differ" in captured.out
    assert captured.err.strip().startswith("dmc verify: 1 file(s) differ")


def test_snakemake_markers_are_left_out_as_dvc_leaves_them_out(repo):
    root, _, params = repo
    (root / "data" / "synth" / "videos" / ".snakemake_timestamp").write_text("")
    assert M.verify(root, params)[1] == []
    patterns = [line.strip() for line in (ROOT / ".dvcignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert sorted(patterns) == sorted(M.IGNORED_NAMES)


def test_a_broken_manifest_is_one_clear_error(tmp_path):
    (tmp_path / "synth.tsv").write_text("path\tsize\n")
    with pytest.raises(M.ManifestError, match="synth.tsv: header must be"):
        M.read_manifest(tmp_path / "synth.tsv")
    with pytest.raises(M.ManifestError, match="manifest not found"):
        M.read_manifest(tmp_path / "none.tsv")


def test_dir_hash_is_dvcs(sample):
    """dvc_dir_md5 gives what DVC itself computes for a folder."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs import LocalFileSystem

    root, _ = sample
    folder = root / "data" / "synth" / "videos"
    fs = LocalFileSystem()
    odb = HashFileDB(fs, str(root / "odb"))
    _, _, tree = build(odb, str(folder), fs, "md5")
    entries = [M.Entry(rel, 0, "", M.file_hashes(folder / rel)[2]) for rel in M.files_of(folder)]
    assert M.dvc_dir_md5(entries) == tree.hash_info.value


def test_committed_manifests_agree_with_dvc_lock():
    """Every data output of dvc.lock under a manifested folder has the .dir hash the manifest gives."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    outs = {o["path"]: o["md5"] for st in lock["stages"].values() for o in st.get("outs", [])}
    checked = 0
    for name, folder in M.ROOTS.items():
        _, entries = M.read_manifest(ROOT / M.MANIFEST_DIR / f"{name}.tsv")
        for path, md5 in outs.items():
            if path == folder or path.startswith(folder + "/"):
                under = path[len(folder) + 1:]
                assert M.dvc_dir_md5(entries, under) == md5, f"{path}: manifest and dvc.lock differ " \
                    "(after `dvc repro`, rewrite the manifests: dmc verify --write)"
                checked += 1
    assert checked >= 5 + 1 + 3     # synth's five folders, data/decoded, the three eval sets


def test_intel_host_record_of_the_libopus_corpus_differs_exactly_in_the_libopus_files():
    """The evidence for synth.portable_audio (results/studies/libopus_hosts/): the Intel Xeon (AVX-512,
    Ubuntu glibc 2.39) run of the libopus corpus (portable_audio false) against this AMD host's
    manifest of the same corpus: every libopus file differs (ESC-10 OGG, WebM), every H.264 + AAC
    file is the same."""
    import json

    study = ROOT / "results" / "studies" / "libopus_hosts"
    record = json.loads((study / "intel_xeon_avx512_ubuntu_glibc239.json").read_text())
    _, entries = M.read_manifest(study / "amd_epyc_synth.tsv")
    ours = {e.path: e for e in entries}
    differ, same = set(), set()
    for rel, info in record["files"].items():
        if rel.startswith("gt/"):
            continue                      # ground truth was hashed under another folder name there
        (same if ours[rel].sha256.startswith(info["sha256"]) else differ).add(rel)
    kinds = lambda names: sorted({(n.split("/")[0], n.rsplit(".", 1)[-1]) for n in names})
    assert kinds(differ) == [("esc10", "ogg"), ("videos", "webm")]
    assert kinds(same) == [("videos", "mkv"), ("videos", "mp4")]
    assert len(differ) == 110 and len(same) == 182
    assert all(any(k.endswith(".opus.packets") for k in ours[n].parts) for n in differ)


def test_the_default_corpus_has_no_libopus_file():
    """synth.portable_audio (the default): the committed manifests hold no Opus stream and no OGG."""
    for name in ("synth", "synth_test"):
        _, entries = M.read_manifest(ROOT / M.MANIFEST_DIR / f"{name}.tsv")
        assert entries
        assert not [e.path for e in entries if e.path.endswith((".ogg", ".opus"))
                    or any(".opus." in k for k in e.parts)], name
        assert any(".vorbis." in k for e in entries for k in e.parts) or name == "synth_test" \
            or load_default_params()["synth"]["other_containers"] == 0


@pytest.mark.slow
def test_default_corpus_bytes_are_the_committed_ones(tmp_path):
    """A sample of the embedded default regenerated with today's code and default params (an MP4, a
    WebM and an MKV clip, an ESC-50-like clip, an ESC-10 clip) has the bytes the committed manifest
    records, byte for byte on any CPU: with synth.portable_audio (the default) no file comes from
    libopus, whose bytes depend on the CPU (docs/data.md "Checking a host")."""
    from dmc import synth
    from dmc.synth import esc10, evalsets, videos

    params = load_default_params()
    s = {**params["synth"], **synth.scaled_counts(params["synth"])}
    _, entries = M.read_manifest(ROOT / M.MANIFEST_DIR / "synth.tsv")
    recorded = {e.path: e for e in entries}
    kinds = videos._containers(s["videos"], s["other_containers"], np.random.default_rng([s["seed"], 1 << 30]))
    picks = {kind: kinds.index(kind) for kind in ("mp4", "webm", "mkv")}
    (tmp_path / "v").mkdir()
    for kind, i in picks.items():
        videos._make_clip((str(tmp_path / "v"), i, kind, s["seed"], s["video_seconds"], s["width"], s["height"],
                           s["fps"], s["audio_rate"], s["max_sources"], s["max_distractors"], s["control"],
                           s["variants"], s["portable_audio"]))
    wav = tmp_path / "esc50.wav"                 # ESC-50-like: seed + 1, target 7, clip 3 (fold 4)
    evalsets._write_esc50_clip((str(wav), 7, 3, s["seed"] + 1, 5.0, 44100))
    assert M.file_hashes(wav)[1] in {e.sha256 for p, e in recorded.items() if p.startswith("esc50/audio/4-") and p.endswith("-7.wav")}
    clip = tmp_path / "esc10.wav"                # ESC-10: seed + 3, target 0, clip 0 (fold 1), via its WAV
    evalsets._write_esc50_clip((str(clip), 0, 0, s["seed"] + 3, 5.0, 44100))
    from dmc.io.audio import read_audio
    audio, rate = read_audio(clip)
    assert s["portable_audio"], "the default writes no libopus file"
    esc10.write_flac(tmp_path / "esc10.flac", audio[0], rate)
    for kind, i in picks.items():
        name = f"vid_{i:05d}.{kind}"
        got, want = M.file_hashes(tmp_path / "v" / name)[1], recorded[f"videos/{name}"].sha256
        assert got == want, f"videos/{name} differs from the committed corpus"
    esc10_hashes = {e.sha256 for p, e in recorded.items() if p.startswith("esc10/001 - Flute/1-")}
    assert M.file_hashes(tmp_path / "esc10.flac")[1] in esc10_hashes


def test_the_intel_host_made_every_committed_file():
    """results/manifest/hosts/intel_xeon_avx512/: `benchmarks/host_check.sh` on an Intel Xeon (AVX-512,
    Ubuntu glibc 2.39) wrote its manifests of the embedded default; every file of every manifested
    folder has the bytes of the committed manifests (docs/data.md "Checking a host"). After an
    intended corpus change, run the script on such a host again (or move this record to a study)."""
    host = ROOT / M.MANIFEST_DIR / "hosts" / "intel_xeon_avx512"
    for name in M.ROOTS:
        rec_host, theirs = M.read_manifest(host / f"{name}.tsv")
        rec_ours, ours = M.read_manifest(ROOT / M.MANIFEST_DIR / f"{name}.tsv")
        assert rec_host == rec_ours, f"{name}: recorded with other params"
        assert {e.path: (e.size, e.sha256) for e in theirs} == {e.path: (e.size, e.sha256) for e in ours}, name
