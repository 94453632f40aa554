"""Reading and writing data: video/audio decoding, the log-mel frontend, training shards,
evaluation-set readers (ESC-50, DCASE), downloads, synthetic ground truth and the
portability helpers that keep decoded bytes identical across machines.

Layer 1: imports only the top-level helpers (dmc.errors, dmc.names, dmc.atomic).
"""
