"""The pipeline: the ``dmc`` command (cli, one entry module per step in
:mod:`dmc.pipeline.steps`), params.yaml validation, the step table (graph, dvc.yaml),
Snakemake/DVC agreement (dvcsync) and DVC experiments (sweeps).

Layer 4: may import every layer below.
"""
