"""Run `dmc <subcommand>` while recording what it uses: the params keys it reads and the dmc
modules it imports.  Put on PATH as `dmc` (see :func:`install_shim`), so that the Snakemake
rules' own commands are what is recorded.  One JSON line per run goes to $DMC_RECORD: the
modules imported in all (``modules``) and those already imported when the CLI had built its
parser (``dispatch``: cli.py and every step's entry module, whose parsers it assembles).

Keys are dotted leaf paths (``train.lr``); a mapping that is iterated, copied, compared,
serialised or pickled counts as reading every leaf under it. The CLI hands the steps typed params
(:class:`dmc.config.Params`): an attribute read is a key read (:class:`RecordingConfig`), and the
dict of ``as_dict()`` records the keys read through it.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path


class Recording(dict):
    """A params mapping that records the dotted keys read through it (shares one ``seen`` set)."""

    def __init__(self, data: dict, prefix: str = "", seen: set | None = None):
        super().__init__(data)
        self._prefix, self._seen = prefix, seen if seen is not None else set()

    def _path(self, key) -> str:
        return f"{self._prefix}{key}"

    def _wrap(self, key, value):
        if isinstance(value, dict) and not isinstance(value, Recording):
            return Recording(value, self._path(key) + ".", self._seen)
        self._seen.add(self._path(key))
        return value

    def _all(self):
        for key in dict.keys(self):
            value = dict.__getitem__(self, key)
            if isinstance(value, dict) and value:
                Recording(value, self._path(key) + ".", self._seen)._all()
            else:
                self._seen.add(self._path(key))

    def plain(self) -> dict:
        self._all()
        return json.loads(json.dumps({k: dict.__getitem__(self, k) for k in dict.keys(self)},
                                     default=lambda o: dict(o)))

    def __getitem__(self, key):
        return self._wrap(key, dict.__getitem__(self, key))

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __iter__(self):
        self._all()
        return dict.__iter__(self)

    def keys(self):
        self._all()
        return dict.keys(self)

    def items(self):
        self._all()
        return [(k, self[k]) for k in dict.keys(self)]

    def values(self):
        return [v for _, v in self.items()]

    def __eq__(self, other):
        self._all()
        return dict.__eq__(self, other)

    __hash__ = None

    def copy(self):
        return self.plain()

    def __deepcopy__(self, memo):
        return self.plain()

    def __reduce_ex__(self, protocol):
        return (dict, (self.plain(),))


class RecordingConfig:
    """Typed params (dmc.config) recording the dotted keys read through their attributes; passes
    ``isinstance`` checks as the object it wraps."""

    def __init__(self, obj, prefix: str, seen: set):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_seen", seen)

    @property
    def __class__(self):
        return type(self._obj)

    def as_dict(self) -> dict:
        return Recording(self._obj.as_dict(), self._prefix, self._seen)

    def __getattr__(self, name):
        from dmc.config import Section

        value = getattr(self._obj, name)
        path = self._prefix + name
        if isinstance(value, Section):
            return RecordingConfig(value, path + ".", self._seen)
        if isinstance(value, dict):   # model.presets: name -> section
            return {k: RecordingConfig(v, f"{path}.{k}.", self._seen) if isinstance(v, Section)
                    else self._leaf(f"{path}.{k}", v) for k, v in value.items()}
        return self._leaf(path, value)

    def _leaf(self, path, value):
        self._seen.add(path)
        return value

    def __setattr__(self, name, value):
        raise AttributeError("typed params are read-only")


def _plain(obj):
    if isinstance(obj, Recording):
        return obj.plain()
    if isinstance(obj, RecordingConfig):
        return obj.as_dict().plain()
    if type(obj) is dict:
        return {k: _plain(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_plain(v) for v in obj)
    return obj


def _dmc_modules() -> list[str]:
    return sorted(Path(m.__file__).resolve().as_posix() for n, m in list(sys.modules.items())
                  if (n == "dmc" or n.startswith("dmc.")) and getattr(m, "__file__", None))


def run(argv: list[str], record: str) -> int:
    import torch

    import dmc.pipeline.cli as cli

    seen: set[str] = set()
    load = cli.load_config
    cli.load_config = lambda path, **kw: RecordingConfig(load(path, **kw), "", seen)
    save = torch.save
    torch.save = lambda obj, f, *a, **k: save(_plain(obj), f, *a, **k)   # files stay plain dicts
    build, dispatch = cli.build_parser, []

    def build_parser():   # the modules the CLI imported to parse argv, before the step runs
        parser = build()
        dispatch.extend(_dmc_modules())
        return parser

    cli.build_parser = build_parser
    code = 1
    try:
        code = cli.main(argv)
    finally:
        args = [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] != "--params")]
        with open(record, "a") as fh:
            fh.write(json.dumps({"command": args[0], "argv": argv, "keys": sorted(seen), "modules": _dmc_modules(),
                                 "dispatch": sorted(dispatch), "exit": code}) + "\n")
    return code


def install_shim(bin_dir: Path) -> Path:
    """Write an executable `dmc` into ``bin_dir`` that runs :func:`run` with this Python."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "dmc"
    shim.write_text(f"#!{sys.executable}\nimport os, sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                    "from step_recorder import run\nsys.exit(run(sys.argv[1:], os.environ['DMC_RECORD']))\n")
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return shim


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], os.environ["DMC_RECORD"]))
