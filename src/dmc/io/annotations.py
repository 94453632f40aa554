"""``dmc fetch <benchmark annotations>``: the public annotation files of the localization benchmarks,
one file each, from a pinned commit (never a moving branch), checksum-verified, then moved into
place atomically. The media (images, audio, videos) are not redistributable and are not fetched
(docs/benchmarks-localization.md says where each comes from).

======================  ==========================================================================
name                    file (repository, path; licence of the repository)
======================  ==========================================================================
vggss-json              vggss.json: LVS metadata/vggss.json (Apache-2.0)
flickr-test-249         flickr_test.csv, 249 ids: LVS metadata/flickr_test.csv (Apache-2.0)
flickr-test-250         flickr_test.csv, 250 ids: SLAVC metadata/flickr_test.csv (Apache-2.0)
music-solo-boxes        solotest.json: DSOL music-exp/solotest.json (MIT)
music-duet-boxes        duettest.json: DSOL music-exp/duettest.json (MIT)
======================  ==========================================================================

Offline (or an unreachable URL) the error names the URL and the reason and nothing is written;
``--url`` takes a mirror or a ``file://`` copy, checked against the same SHA-256 unless
``--sha256`` gives another.
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dmc.atomic import atomic_file
from dmc.io.fetch import FetchError

LVS = "https://raw.githubusercontent.com/hche11/Localizing-Visual-Sounds-the-Hard-Way/8fe8cbbf810e804cf8cc9b244bb5d77ec8aa8315"
SLAVC = "https://raw.githubusercontent.com/stoneMo/SLAVC/05b429c6f474ca6f1070d08e1d0142948d1625bf"
DSOL = ("https://raw.githubusercontent.com/DTaoo/Discriminative-Sounding-Objects-Localization/"
        "7f402071e2d654e4ff82791bfb3d5218f19f20df")


@dataclass(frozen=True)
class AnnotationFile:
    url: str
    sha256: str
    size: int
    filename: str
    check: str            # "json-list" | "json-object" | "csv"
    entries: int          # entries (list items, object keys, CSV rows) expected


ANNOTATIONS = {
    "vggss-json": AnnotationFile(f"{LVS}/metadata/vggss.json",
                                 "ae300b4a259267e6fe839970d495862edd70bfe3da63d925bcdb34054ed3b15e", 620306,
                                 "vggss.json", "json-list", 5158),
    "flickr-test-249": AnnotationFile(f"{LVS}/metadata/flickr_test.csv",
                                      "faf5465bdb991cfb7506ccadef64dfea9e9bceb47e895d0e4dbdc2a0ca622871", 3909,
                                      "flickr_test_249.csv", "csv", 249),
    "flickr-test-250": AnnotationFile(f"{SLAVC}/metadata/flickr_test.csv",
                                      "e5c04bd722fc73a2daafcdafe9e10068d198c5df168300db4e05aa61b4ef71ed", 3921,
                                      "flickr_test_250.csv", "csv", 250),
    "music-solo-boxes": AnnotationFile(f"{DSOL}/music-exp/solotest.json",
                                       "57fb92b151f7306869f4f3395237d052395885dca226138539e93f72a952faa4", 2612702,
                                       "solotest.json", "json-object", 0),
    "music-duet-boxes": AnnotationFile(f"{DSOL}/music-exp/duettest.json",
                                       "d9f0a4faa8bebf3e281ea05d04597bf4070c2210aad137322d96d79c9d155fdd", 2805824,
                                       "duettest.json", "json-object", 0),
}


def _read(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(f"{url}: download failed: {getattr(exc, 'reason', exc)} "
                         "(offline? give --url with a mirror or a file:// copy)") from None


def _entries(data: bytes, check: str, url: str) -> int:
    try:
        text = data.decode("utf-8")
        if check == "csv":
            return sum(1 for line in text.splitlines() if line.strip())
        parsed = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FetchError(f"{url}: not a readable {check} file: {exc}") from None
    want = list if check == "json-list" else dict
    if not isinstance(parsed, want):
        raise FetchError(f"{url}: expected a JSON {want.__name__}, got {type(parsed).__name__}")
    return len(parsed)


def fetch_annotations(name: str, out: str | Path, url: str | None = None, sha256: str | None = None,
                      log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> Path:
    """Download annotation file ``name`` into folder ``out`` (atomically, only when verified)."""
    if name not in ANNOTATIONS:
        raise FetchError(f"unknown annotation file {name!r}; known: {', '.join(ANNOTATIONS)}")
    spec = ANNOTATIONS[name]
    source = url or spec.url
    want = (sha256 or spec.sha256).lower()
    log(f"fetch: {name}: downloading {source}")
    data = _read(source)
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise FetchError(f"{source}: sha256 mismatch: expected {want}, got {got} (corrupted or changed file)")
    n = _entries(data, spec.check, source)
    if spec.entries and n != spec.entries and not sha256:
        raise FetchError(f"{source}: {n} entries, expected {spec.entries}")
    path = Path(out) / spec.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        Path(tmp).write_bytes(data)
    log(f"fetch: {name}: {n} entries, sha256 verified, in {path}")
    return path
