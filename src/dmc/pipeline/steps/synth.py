"""``dmc synth``: the embedded synthetic corpus (videos with ground truth, ESC-50-, ESC-10- and
DCASE-like evaluation sets), the untouched test corpus and the multi-source test corpus."""

from __future__ import annotations

import sys


def add_parsers(sub) -> None:
    c = sub.add_parser("synth", help="generate the embedded synthetic corpus")
    c.add_argument("what", choices=["videos", "esc50", "esc10", "dcase", "test", "multi"],
                   help="test: the untouched test corpus (synth.test_seed, synth.test_videos); multi: the "
                        "multi-source test corpus with stems (synth.multi_seed, synth.multi_videos)")
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--ground-truth", default="data/synth/ground_truth",
                   help="(videos, test, multi) ground-truth folder")
    c.add_argument("--stems", default="data/synth_multi/stems", help="(multi) folder of the per-source audio stems")
    c.add_argument("--clips-per-class", type=int, help="(esc50) override, e.g. 40 for an ESC-50-sized set")
    c.set_defaults(func=run)


def run(args, cfg):
    from dmc import synth

    if args.what == "test":     # the untouched test corpus, from synth.test_seed (dmc.pipeline.testcorpus)
        from dmc.pipeline.testcorpus import test_corpus_settings

        kw = test_corpus_settings(cfg.synth.as_dict())   # takes the section as a dict (tests edit it)
        df = synth.generate_videos(args.out, args.ground_truth, **kw)
        print(f"synth: test corpus of {len(df)} videos (seed {kw['seed']}) in {args.out}, ground truth in "
              f"{args.ground_truth}", file=sys.stderr)
        return
    if args.what == "multi":    # the multi-source test corpus, from synth.multi_seed (dmc.pipeline.multicorpus)
        from dmc.pipeline.multicorpus import multi_corpus_settings
        from dmc.synth.multisource import generate_multisource

        kw = multi_corpus_settings(cfg.synth.as_dict())
        df = generate_multisource(args.out, args.stems, args.ground_truth, **kw)
        print(f"synth: multi-source test corpus of {len(df)} videos ({(df.kind == 'duet').sum()} duets, seed "
              f"{kw['seed']}) in {args.out}, stems in {args.stems}, ground truth in {args.ground_truth}",
              file=sys.stderr)
        return
    # the section as a dict without the test corpora's own keys, with the counts scaled by synth.size
    # (scaled_counts takes and the tests edit a dict); the stage depends on exactly these keys
    # (graph.STEPS), so a new synth.test_seed or synth.multi_seed leaves the training corpus current
    from dmc.config import Synth
    from dmc.names import TEST_CORPUS_SYNTH_KEYS

    d = {k: getattr(cfg.synth, k) for k in Synth.keys() if k not in TEST_CORPUS_SYNTH_KEYS}
    s = {**d, **synth.scaled_counts(d)}
    seed = cfg.synth.seed   # the corpus's own seed: `seed` (training) sweeps keep the data fixed
    if args.what == "videos":
        df = synth.generate_videos(args.out, args.ground_truth, n_videos=s["videos"], seconds=s["video_seconds"],
                                   width=s["width"], height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"],
                                   other_containers=s["other_containers"], max_sources=s["max_sources"],
                                   max_distractors=s["max_distractors"], seed=seed, control=s["control"],
                                   variants=s["variants"], portable_audio=s["portable_audio"],
                                   mixtures=s["mixtures"])
        print(f"synth: {len(df)} videos in {args.out}, ground truth in {args.ground_truth}", file=sys.stderr)
    elif args.what == "esc50":
        synth.generate_esc50(args.out, n_classes=s["esc50_classes"],
                             clips_per_class=args.clips_per_class or s["esc50_clips_per_class"], seed=seed + 1)
        print(f"synth: ESC-50-like set in {args.out}", file=sys.stderr)
    elif args.what == "esc10":
        synth.generate_esc10(args.out, n_classes=min(10, s["esc50_classes"]),
                             clips_per_class=s["esc50_clips_per_class"], seed=seed + 3,
                             portable_audio=s["portable_audio"])
        print(f"synth: ESC-10-release-like set in {args.out}", file=sys.stderr)
    else:
        synth.generate_dcase(args.out, recordings_per_scene=s["dcase_recordings_per_scene"],
                             seconds=s["dcase_seconds"], seed=seed + 2)
        print(f"synth: DCASE-like set in {args.out}", file=sys.stderr)
