"""The public HEAR-style API, ``import dmc.hear``: an alias of :mod:`dmc.evaluation.hear`.

    from dmc.hear import load_model, get_scene_embeddings, get_timestamp_embeddings

Kept at the top of the package so that user code does not depend on where the implementation
lives; it is the one top-level module allowed to import a higher layer (tests/test_layers.py).
"""

from dmc.evaluation.hear import AudioEmbedding, get_scene_embeddings, get_timestamp_embeddings, load_model

__all__ = ["AudioEmbedding", "load_model", "get_scene_embeddings", "get_timestamp_embeddings"]
