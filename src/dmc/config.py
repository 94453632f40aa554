"""params.yaml as typed, frozen objects: one dataclass per section, built once after validation.

:func:`dmc.pipeline.params.load_config` validates params.yaml (JSON schema and cross-key checks)
and returns :meth:`Params.from_dict` of it; the steps read attributes (``cfg.localize.ciou_threshold``)
instead of nested dict keys. :meth:`Params.as_dict` (and each section's ``as_dict``) gives back the
same nested dict, key order included (``key_order``), for the code that hashes, pickles or records
params (the training fingerprint, the checkpoint's config, manifests): their bytes stay those of
the dict read from params.yaml.

This module validates nothing (the schema does, before :meth:`Params.from_dict`); the fields of each
class are the keys of its section in ``src/dmc/schemas/params.schema.yaml`` (tests/test_config.py
fails when the two drift apart). A key the schema does not require is a field with ``default=None``
marked optional: absent in the dict, None here, and left out again by ``as_dict``. Lists are kept
as tuples (the objects are immutable) and given back as lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

OPTIONAL = {"optional": True}   # field metadata: a key the schema does not require


def _frozen(value):
    """Lists (at any depth, also inside dicts) as tuples."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _plain(value):
    """The inverse of :func:`_frozen`, sections included: what params.yaml gives for it."""
    if isinstance(value, Section):
        return value.as_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Section:
    """A params section: ``from_dict`` of its validated dict, ``as_dict`` back (in the dict's key order)."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The params keys of the section (its fields)."""
        return tuple(f.name for f in fields(cls) if f.name != "key_order")

    @classmethod
    def from_dict(cls, d: dict):
        kw = {}
        for f in fields(cls):
            if f.name == "key_order":
                continue
            if f.name in d:
                kw[f.name] = cls._convert(f.name, d[f.name])
            elif not f.metadata.get("optional"):
                raise KeyError(f"{cls.__name__}: missing key {f.name!r} (validate params first)")
        unknown = set(d) - set(cls.keys())
        if unknown:
            raise KeyError(f"{cls.__name__}: unknown key(s) {sorted(unknown)} (validate params first)")
        return cls(**kw, key_order=tuple(d))

    @classmethod
    def _convert(cls, name: str, value):
        return _frozen(value)

    def as_dict(self) -> dict:
        names = self.key_order or [n for n in self.keys() if getattr(self, n) is not None or not self._optional(n)]
        return {name: _plain(getattr(self, name)) for name in names}

    @classmethod
    def _optional(cls, name: str) -> bool:
        return any(f.name == name and f.metadata.get("optional") for f in fields(cls))


def _order():
    """The ``key_order`` field of every section: the keys as the dict had them (not compared)."""
    return field(default=(), compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Data(Section):
    videos: str
    ground_truth: Optional[str]     # None: a real corpus, no boxes
    localization_benchmark: Optional[str]   # a published benchmark's folder (kind from its files); None: no stage
    esc50: str
    esc10: str
    dcase: str
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Synth(Section):
    seed: int
    test_seed: int
    test_videos: int
    multi_seed: int
    multi_videos: int
    control: str
    variants: bool
    mixtures: str
    size: str
    videos: int
    video_seconds: float
    width: int
    height: int
    fps: int
    audio_rate: int
    other_containers: float
    portable_audio: bool
    max_sources: int
    max_distractors: int
    esc50_classes: int
    esc50_clips_per_class: int
    dcase_recordings_per_scene: int
    dcase_seconds: float
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Decode(Section):
    num_shards: int
    segment_seconds: float
    frame_size: int
    sample_rate: int
    n_mels: int
    f_min: float
    f_max: float
    window_seconds: float
    hop_seconds: float
    log_offset: float
    max_bad_fraction: float
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Preset(Section):
    visual: tuple      # conv widths per block: ((16,), (32,), (64, 128))
    audio: tuple
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Model(Section):
    preset: str
    batch_norm: bool
    presets: dict      # name -> Preset
    key_order: tuple = _order()

    @classmethod
    def _convert(cls, name: str, value):
        if name == "presets":
            return {k: Preset.from_dict(v) for k, v in value.items()}
        return super()._convert(name, value)


@dataclass(frozen=True, kw_only=True)
class Train(Section):
    clusters: int
    dim: int
    iterations: int
    temperature: float
    squash: Optional[str] = field(default=None, metadata=OPTIONAL)
    cluster_init: Optional[str] = field(default=None, metadata=OPTIONAL)
    margin: float
    batch_size: int
    epochs: int
    lr: float
    weight_decay: float
    schedule: str
    warmup_steps: int
    val_fraction: float
    test_fraction: float
    device: str
    amp: bool
    compile: bool
    num_workers: int
    checkpoint_every: int
    portable: bool               # CPU training whose bytes do not depend on the host (dmc.model.portable)
    portable_threads: int        # its intra-op threads, whatever the core count
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Features(Section):
    layer: Optional[int]     # audio conv blocks to run (None: all)
    pooling: str
    batch_size: int
    device: str
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Evaluate(Section):
    C_grid: tuple
    min_fold_clips_per_class: float
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Localize(Section):
    heatmap_rule: str
    agreement_temperature: float
    ciou_threshold: float
    center_sigma: float
    max_sources: int
    multisource_cuts: Optional[tuple]   # None: fitted on the train and val videos
    clips_for_overlays: int
    batch_size: int
    device: str
    # the class maps' gate (dmc.localization.classmaps.GATES); absent in params files older than it
    class_map_gate: str = field(default="none", metadata=OPTIONAL)
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Compute(Section):
    """How much of the machine a step uses (no result depends on it)."""
    decode_workers: Any = field(default=None, metadata=OPTIONAL)   # "auto" or a positive int
    key_order: tuple = _order()


@dataclass(frozen=True, kw_only=True)
class Sweeps(Section):
    """``dmc sweep`` and the studies' grids: dotted params keys -> values (kept as mappings)."""
    seeds: tuple
    control: Optional[dict] = field(default=None, metadata=OPTIONAL)
    ablation_seeds: Optional[tuple] = field(default=None, metadata=OPTIONAL)
    headline: Optional[dict] = field(default=None, metadata=OPTIONAL)
    headline_seeds: Optional[tuple] = field(default=None, metadata=OPTIONAL)
    ablation: dict
    structure: Optional[dict] = field(default=None, metadata=OPTIONAL)
    metrics: tuple
    key_order: tuple = _order()


SECTIONS = {"data": Data, "synth": Synth, "decode": Decode, "model": Model, "train": Train,
            "features": Features, "evaluate": Evaluate, "localize": Localize, "compute": Compute,
            "sweeps": Sweeps}


@dataclass(frozen=True, kw_only=True)
class Params(Section):
    """The whole of params.yaml; ``sweeps`` is None when the file has none (only ``dmc sweep`` reads it)."""
    seed: int
    data: Data
    synth: Synth
    decode: Decode
    model: Model
    train: Train
    features: Features
    evaluate: Evaluate
    localize: Localize
    compute: Optional[Compute] = field(default=None, metadata=OPTIONAL)
    sweeps: Optional[Sweeps] = field(default=None, metadata=OPTIONAL)
    key_order: tuple = _order()

    @classmethod
    def _convert(cls, name: str, value):
        if name in SECTIONS:
            return SECTIONS[name].from_dict(value)
        return super()._convert(name, value)


def as_params(p: Any) -> Params:
    """``p`` as :class:`Params`: a Params as it is, a (validated) params dict converted."""
    return p if isinstance(p, Params) else Params.from_dict(p)
