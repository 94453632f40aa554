"""Audio-feature evaluation: features of a trained model, the HEAR-style API, the batched
SVMs, the ESC-50 / DCASE protocols and the result tables.

Layer 3: imports dmc.model, dmc.io and the top-level helpers.
"""
