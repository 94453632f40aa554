"""Sound localization: heat maps, localization metrics, multi-source counting, overlays and
the localization step (run_benchmark, localize_videos).

Layer 3: imports dmc.model, dmc.io and the top-level helpers (not dmc.evaluation).
"""
