"""Use the learned audio network outside the pipeline, with the HEAR benchmark's API.

    from dmc.hear import load_model, get_scene_embeddings, get_timestamp_embeddings
    model = load_model("models/dmc.pt")                   # trained by `dmc train`
    audio = torch.zeros(2, 5 * model.sample_rate)         # (n_sounds, n_samples), mono, 16 kHz
    scene = get_scene_embeddings(audio, model)            # (2, model.scene_embedding_size)
    emb, ts = get_timestamp_embeddings(audio, model)      # (2, n_times, D), (2, n_times) in ms

The scene embedding is the pooled conv map used by ``dmc extract`` (layer and pooling
as in ``dmc.evaluation.features``); timestamp embeddings pool over mel bands only, one per
time cell of the conv map, stamped at the cell's centre.
"""

from __future__ import annotations

import torch

from dmc.evaluation.features import block_outputs, pool
from dmc.io.logmel import LogMel
from dmc.model.training import load_model as _load_dmc


class AudioEmbedding(torch.nn.Module):
    """The DMC audio subnet with its log-mel frontend (HEAR ``Model``)."""

    def __init__(self, audio_net: torch.nn.Module, decode: dict, layer: int | None = None,
                 pooling: str = "meanmax"):
        super().__init__()
        self.net, self.frontend = audio_net.eval(), LogMel.from_params(decode)
        self.layer = layer or audio_net.num_pools + 1
        self.pooling = pooling
        self.sample_rate = decode["sample_rate"]
        with torch.no_grad():   # channels at the chosen layer
            width = block_outputs(self.net, torch.zeros(1, 1, 64, 64), self.layer).shape[1]
        self.scene_embedding_size = width * (2 if pooling == "meanmax" else 1)
        self.timestamp_embedding_size = self.scene_embedding_size
        # seconds per time cell of the conv map: 2 ** (pools before the layer) log-mel hops
        self.cell_seconds = (2 ** (self.layer - 1)) * self.frontend.hop_length / self.sample_rate

    def conv_map(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.frontend(audio.float()).unsqueeze(1)          # (n, 1, T, n_mels)
        return block_outputs(self.net, mel, self.layer)          # (n, C, t, m)


def load_model(model_file_path: str = "models/dmc.pt", layer: int | None = None,
               pooling: str = "meanmax") -> AudioEmbedding:
    model, config = _load_dmc(model_file_path)
    return AudioEmbedding(model.audio, config["decode"], layer, pooling)


@torch.no_grad()
def get_scene_embeddings(audio: torch.Tensor, model: AudioEmbedding) -> torch.Tensor:
    """(n_sounds, n_samples) mono audio at ``model.sample_rate`` -> (n_sounds, scene_embedding_size)."""
    return pool(model.conv_map(audio), model.pooling)


@torch.no_grad()
def get_timestamp_embeddings(audio: torch.Tensor, model: AudioEmbedding) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_sounds, n_samples) -> embeddings (n_sounds, n_times, D) and their centre times in ms."""
    fmap = model.conv_map(audio)                                 # (n, C, t, m)
    emb = pool(fmap, model.pooling, dims=(3,)).transpose(1, 2)   # (n, t, D)
    t = (torch.arange(emb.shape[1], dtype=torch.float32) + 0.5) * model.cell_seconds * 1000.0
    return emb, t.expand(emb.shape[0], -1).contiguous()
