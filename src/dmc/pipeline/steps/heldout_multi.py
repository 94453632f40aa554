"""``dmc heldout-multi``: the trained model, the baselines and the audio control scored on the
untouched multi-source test corpus, class-aware and stem-conditioned; the cluster -> class mapping
learned on the training corpus and written beside the model (inference only;
:mod:`dmc.pipeline.heldout_multi`)."""

from __future__ import annotations


def add_parsers(sub) -> None:
    c = sub.add_parser("heldout-multi", help="score the trained model, the baselines and the audio control on the "
                                             "multi-source test corpus (see dmc.pipeline.heldout_multi)")
    c.add_argument("--model", default="models/dmc.pt")
    c.add_argument("--mapping", help="cluster -> class mapping written (default: beside the model, "
                                     "models/dmc.class_mapping.json)")
    c.add_argument("--decoded", default="data/decoded",
                   help="the training corpus (mapping, cut points, BatchNorm statistics: train + val only)")
    c.add_argument("--ground-truth", help="training corpus ground truth (default: params data.ground_truth)")
    c.add_argument("--multi-decoded", default="data/decoded_multi", help="the multi-source test corpus, decoded")
    c.add_argument("--multi-ground-truth", default="data/synth_multi/ground_truth")
    c.add_argument("--stems", default="data/synth_multi/stems")
    c.add_argument("--out-dir", default="results/heldout_multi")
    c.add_argument("--metrics", default="results/heldout_multi_metrics.json")
    c.set_defaults(func=run)


def run(args, cfg):
    from dmc.model.training import pick_device
    from dmc.pipeline.heldout_multi import main_step

    main_step(args, cfg, pick_device(cfg.localize.device))
