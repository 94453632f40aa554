"""Studies that chose the defaults (on train/val data): the heat-map rule and temperature,
the multi-source count rule, the clustering's sharpness.  Run as ``python -m dmc.studies.<name>``.

Layer 5 (top): may import every layer below, including dmc.pipeline.
"""
