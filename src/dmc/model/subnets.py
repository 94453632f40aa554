"""The two convolutional streams of DMC (method summary, "Two streams").

Both streams are plain VGG-style stacks of 3x3 convolutions:

- visual subnet: VGG16 conv blocks 1-5 on an RGB frame scaled to [-1, 1]
  (256x256 -> 16x16x512 in the paper);
- audio subnet: a VGGish-like stack on a one-channel log-mel spectrogram laid out as
  (time, mel) (T x 64 -> T/8 x 8 x 512).

A stack is described by ``blocks``: a list of blocks, each a list of conv widths. Every conv
is 3x3 with padding 1 followed by ReLU (optionally conv -> BatchNorm -> ReLU; off by default,
the paper's VGG has none). A 2x2 max-pool sits *between* consecutive blocks, never after the
last one, so a stack of n blocks divides each spatial side by 2**(n-1) (floor at each pool).

The last feature map is cut into its p = H*W spatial vectors with :func:`to_vectors`; these
are the u_i that the multimodal clustering groups into components.
"""

from __future__ import annotations

import torch
import torch.nn as nn

# Conv widths per block. Both streams of a preset end with the same channel count, because
# one projection (shared by both modalities) maps their vectors into the cluster spaces.
PRESETS: dict[str, dict[str, list[list[int]]]] = {
    # The paper: VGG16 conv blocks 1-5 and the VGGish-like audio stack.
    # 256x256 frame -> 16x16x512; T x 64 log-mel -> (T/8) x 8 x 512.
    "paper": {
        "visual": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
        "audio": [[64], [128], [256, 256], [512, 512]],
    },
    # Small enough for 2 CPU cores: 64x64 frame -> 8x8x128; 40x64 log-mel -> 5x8x128.
    "tiny": {
        "visual": [[16], [32], [64], [128]],
        "audio": [[16], [32], [64, 64], [128, 128]],
    },
    # tiny with one visual pool fewer (its last two convs in one block): 64x64 frame -> 16x16x128,
    # the map of the paper's VGG16 (16 x 16) at a quarter of the frame side; same audio stack.
    "tiny16": {
        "visual": [[16], [32], [64, 128]],
        "audio": [[16], [32], [64, 64], [128, 128]],
    },
}


def _check_blocks(blocks, name: str = "blocks") -> list[list[int]]:
    """Return ``blocks`` as a list of lists of ints, or raise ValueError saying what is wrong."""
    if not isinstance(blocks, (list, tuple)) or len(blocks) == 0:
        raise ValueError(f"{name}: expected a non-empty list of blocks, got {blocks!r}")
    out = []
    for b, block in enumerate(blocks):
        if not isinstance(block, (list, tuple)) or len(block) == 0:
            raise ValueError(f"{name}[{b}]: expected a non-empty list of conv widths, got {block!r}")
        widths = []
        for w in block:
            if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
                raise ValueError(f"{name}[{b}]: conv widths must be positive integers, got {w!r}")
            widths.append(int(w))
        out.append(widths)
    return out


def check_preset(visual_blocks, audio_blocks) -> None:
    """Raise ValueError unless both streams are well formed and end with the same width."""
    visual_blocks = _check_blocks(visual_blocks, "visual")
    audio_blocks = _check_blocks(audio_blocks, "audio")
    cv, ca = visual_blocks[-1][-1], audio_blocks[-1][-1]
    if cv != ca:
        raise ValueError(
            f"the visual stream ends with {cv} channels but the audio stream with {ca}; "
            "both must end with the same channel count (the cluster projection is shared)"
        )


class ConvStack(nn.Module):
    """VGG-style stack: blocks of (3x3 conv, padding 1, ReLU), 2x2 max-pool between blocks.

    Args:
        in_channels: channels of the input (3 for RGB frames, 1 for a log-mel spectrogram).
        blocks: conv widths per block, e.g. ``[[64, 64], [128, 128]]``.
        batch_norm: insert BatchNorm2d between each conv and its ReLU (off in the paper).

    Input (B, in_channels, H, W) -> output (B, out_channels, H / 2**(n-1), W / 2**(n-1)).
    """

    def __init__(self, in_channels: int, blocks: list[list[int]], batch_norm: bool = False):
        super().__init__()
        blocks = _check_blocks(blocks)
        layers: list[nn.Module] = []
        c = in_channels
        for b, block in enumerate(blocks):
            if b > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))  # between blocks only
            for width in block:
                layers.append(nn.Conv2d(c, width, kernel_size=3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU(inplace=True))
                c = width
        self.layers = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.out_channels = c
        self.num_pools = len(blocks) - 1
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming (He) normal init for the convs, as torchvision's VGG; zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the output map for an input of ``height`` x ``width``."""
        for _ in range(self.num_pools):
            height, width = height // 2, width // 2  # MaxPool2d(2) floors odd sizes
        return height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def VisualNet(blocks: list[list[int]], batch_norm: bool = False) -> ConvStack:
    """Visual subnet: frames (B, 3, H, W) with values in [-1, 1] -> conv map."""
    return ConvStack(3, blocks, batch_norm=batch_norm)


def AudioNet(blocks: list[list[int]], batch_norm: bool = False) -> ConvStack:
    """Audio subnet: log-mel (B, 1, T, n_mels), time along H and mel bands along W -> conv map."""
    return ConvStack(1, blocks, batch_norm=batch_norm)


def to_vectors(fmap: torch.Tensor) -> torch.Tensor:
    """Cut a conv map (B, C, H, W) into its p = H*W spatial vectors: (B, p, C).

    Row-major order: vector i comes from position (row, col) = divmod(i, W), i.e.
    i = row * W + col; ``out.reshape(B, H, W, C)`` undoes it. Works for channels-last
    tensors too (``flatten`` / ``transpose`` never need a contiguous input).
    """
    return fmap.flatten(2).transpose(1, 2)
