"""dmc-pipeline: Deep Multimodal Clustering (Hu, Nie, Li, CVPR 2019) as a reproducible pipeline."""

__version__ = "0.1.0"
