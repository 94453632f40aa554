"""The DMC model: two conv streams + one multimodal clustering module shared by both.

    frames (B,3,H,W) --VisualNet--> (B,C,h,w) --to_vectors--> (B,p_v,C) --+
                                                                          +-- MultimodalClustering
    logmel (B,1,T,M) --AudioNet---> (B,C,t,m) --to_vectors--> (B,p_a,C) --+   (same projection W)
                                                                               -> cv (B,k,d), ca (B,k,d)

The loss (see :mod:`dmc.model.loss`) compares audio center j with visual center j.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from dmc.model.clustering import Clusters, MultimodalClustering
from dmc.model.subnets import PRESETS, AudioNet, VisualNet, check_preset, to_vectors

# Reference-code defaults (method summary): k = 10 clusters, d = 16, 3 iterations, z = 1.
DEFAULTS = {"clusters": 10, "dim": 16, "iterations": 3, "temperature": 1.0, "squash": "both",
            "cluster_init": "uniform"}
# the keys a trained model's config carries; squash and cluster_init only when not at their default,
# so models saved before they existed load, and hash, the same
STRUCTURE_DEFAULTS = {k: DEFAULTS[k] for k in ("squash", "cluster_init")}


class DMC(nn.Module):
    """Deep Multimodal Clustering.

    Args:
        visual_blocks, audio_blocks: conv widths per block of each stream (see
            :data:`dmc.model.subnets.PRESETS`); both must end with the same width C.
        clusters: k.  dim: d.  iterations: fixed-point iterations.  temperature: z.
        batch_norm: BatchNorm in the subnets (off in the paper).
        squash, cluster_init: squash placement and first assignments (:mod:`dmc.model.clustering`).
    """

    def __init__(
        self,
        visual_blocks: list[list[int]],
        audio_blocks: list[list[int]],
        clusters: int = 10,
        dim: int = 16,
        iterations: int = 3,
        temperature: float = 1.0,
        batch_norm: bool = False,
        squash: str = "both",
        cluster_init: str = "uniform",
    ):
        super().__init__()
        check_preset(visual_blocks, audio_blocks)
        self.visual = VisualNet(visual_blocks, batch_norm=batch_norm)
        self.audio = AudioNet(audio_blocks, batch_norm=batch_norm)
        # One module for both streams: the projection into the k spaces is shared.
        self.clustering = MultimodalClustering(
            self.visual.out_channels, clusters, dim, iterations, temperature, squash, cluster_init
        )
        self.clusters = clusters

    @classmethod
    def from_params(cls, model_params: dict[str, Any], train_params: dict[str, Any]) -> "DMC":
        """Build from the ``model`` and ``train`` sections of params.yaml.

        model_params: {"preset": name, "presets": {name: {"visual": [...], "audio": [...]}},
        "batch_norm": bool (optional)}; a preset missing from "presets" (or no "presets" at
        all) is looked up in :data:`dmc.model.subnets.PRESETS`.
        train_params: clusters, dim, iterations, temperature, squash, cluster_init (missing keys take the
        reference defaults, :data:`DEFAULTS`); other keys are ignored.
        """
        model_params = dict(model_params or {})
        name = model_params.get("preset", "tiny")
        presets = {**PRESETS, **(model_params.get("presets") or {})}
        if name not in presets:
            raise ValueError(f"model.preset: unknown preset {name!r}; known: {sorted(presets)}")
        preset = presets[name]
        if not isinstance(preset, dict) or "visual" not in preset or "audio" not in preset:
            raise ValueError(f"model.presets.{name}: needs 'visual' and 'audio' block lists")
        hp = {key: (train_params or {}).get(key, default) for key, default in DEFAULTS.items()}
        return cls(
            preset["visual"],
            preset["audio"],
            clusters=int(hp["clusters"]),
            dim=int(hp["dim"]),
            iterations=int(hp["iterations"]),
            temperature=float(hp["temperature"]),
            batch_norm=bool(model_params.get("batch_norm", False)),
            squash=str(hp["squash"]),
            cluster_init=str(hp["cluster_init"]),
        )

    @classmethod
    def random_init(cls, params: dict) -> "DMC":
        """The untrained baseline: the configured network, seeded with params["seed"], in eval mode."""
        torch.manual_seed(params["seed"])
        return cls.from_params(params["model"], params["train"]).eval()

    def num_vectors(self, frame_size: int, n_frames: int, n_mels: int) -> tuple[int, int]:
        """(p_v, p_a): vectors per clip for frame_size x frame_size frames and an
        n_frames x n_mels log-mel spectrogram.

        Raises ValueError if a conv map would be empty or if there are fewer vectors than
        clusters (train.clusters > p), which would leave clusters without anything to hold.
        """
        hv, wv = self.visual.output_hw(frame_size, frame_size)
        ha, wa = self.audio.output_hw(n_frames, n_mels)
        p_v, p_a = hv * wv, ha * wa
        if p_v == 0 or p_a == 0:
            raise ValueError(
                f"inputs too small for the subnets: {frame_size}x{frame_size} frames give a "
                f"{hv}x{wv} map, {n_frames}x{n_mels} log-mel gives a {ha}x{wa} map"
            )
        k = self.clusters
        if k > min(p_v, p_a):
            raise ValueError(
                f"train.clusters = {k} exceeds the number of vectors per clip "
                f"(visual {p_v} = {hv}x{wv}, audio {p_a} = {ha}x{wa}); lower train.clusters "
                "or use larger frames / longer audio segments"
            )
        return p_v, p_a

    def encode_visual(self, frames: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """frames (B, 3, H, W) in [-1, 1] -> (vectors (B, p_v, C), (h, w) of the conv map).

        Vector i sits at (row, col) = divmod(i, w) of the map.
        """
        fmap = self.visual(frames)
        return to_vectors(fmap), (fmap.shape[-2], fmap.shape[-1])

    def encode_audio(self, logmel: torch.Tensor) -> torch.Tensor:
        """log-mel (B, 1, T, n_mels) -> vectors (B, p_a, C), row-major over (time, mel)."""
        return to_vectors(self.audio(logmel))

    def forward(self, frames: torch.Tensor, logmel: torch.Tensor) -> dict[str, Any]:
        """Cluster both streams with the shared module.

        Returns a dict with
          ca, cv:               audio / visual centers (B, k, d)
          assign_a, assign_v:   soft assignments s_ij (B, p_a, k) / (B, p_v, k)
          dist_a, dist_v:       d_ij to the own modality's final centers, same shapes
          visual_hw, audio_hw:  (h, w) of the conv maps (vector i <-> divmod(i, w))
        """
        fmap_a = self.audio(logmel)
        uv, visual_hw = self.encode_visual(frames)
        ua = to_vectors(fmap_a)
        cl_v: Clusters = self.clustering(uv)
        cl_a: Clusters = self.clustering(ua)
        return {
            "ca": cl_a.centers,
            "cv": cl_v.centers,
            "assign_a": cl_a.assign,
            "assign_v": cl_v.assign,
            "dist_a": cl_a.dist,
            "dist_v": cl_v.dist,
            "visual_hw": visual_hw,
            "audio_hw": (fmap_a.shape[-2], fmap_a.shape[-1]),
        }
