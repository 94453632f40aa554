"""``dmc heldout``: the trained model, the baselines and the audio controls scored on the untouched
test corpus (inference only; :mod:`dmc.pipeline.heldout`)."""

from __future__ import annotations


def add_parsers(sub) -> None:
    c = sub.add_parser("heldout", help="score the trained model, the baselines and the audio controls on the "
                                       "untouched test corpus (inference only; see dmc.pipeline.heldout)")
    c.add_argument("--model", default="models/dmc.pt")
    c.add_argument("--decoded", default="data/decoded", help="the training corpus (cut points, BatchNorm statistics)")
    c.add_argument("--test-decoded", default="data/decoded_test", help="the untouched test corpus, decoded")
    c.add_argument("--ground-truth", help="training corpus ground truth (default: params data.ground_truth)")
    c.add_argument("--test-ground-truth", default="data/synth_test/ground_truth")
    c.add_argument("--esc50", default="data/evalsets/esc50", help="ESC-like log-mel of `dmc evalset` ('': skip)")
    c.add_argument("--out-dir", default="results/heldout")
    c.add_argument("--metrics", default="results/heldout_metrics.json")
    c.set_defaults(func=run)


def run(args, cfg):
    from dmc.model import portable

    pins = portable.pin_step(cfg.train, cfg.localize.device)   # train.portable: before torch's first call
    from dmc.model.training import pick_device
    from dmc.pipeline.heldout import main_step

    device = pick_device(cfg.localize.device)
    portable.apply(pins, device.type)
    main_step(args, cfg, device)
