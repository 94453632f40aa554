"""The DMC network and its training: subnets, multimodal clustering, loss, the shard
dataset and splits, the trainer and clustering diagnostics.

Layer 2: imports dmc.io and the top-level helpers, never evaluation, localization or pipeline.
"""
