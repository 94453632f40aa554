"""The untouched test corpus: synthetic videos of the embedded default's kind, from their own seed.

``dmc synth test --out data/synth_test/videos --ground-truth data/synth_test/ground_truth``
(Snakemake rule ``synth_test``, DVC stage ``synth_test``) draws ``synth.test_videos`` clips
(scaled by ``synth.size`` as every count of the corpus) from ``synth.test_seed`` with every
other setting of the training corpus (length, size, frame rate, containers, sources,
distractors, control, variants). No step that makes a choice reads it: only ``decode_test``
(``dmc decode`` into ``data/decoded_test``) and the scoring step :mod:`dmc.pipeline.heldout` do.
"""

from __future__ import annotations

from dmc.pipeline.params import ParamsError

#: the embedded corpus's own seeds (videos: seed; ESC-like, DCASE-like, ESC-10-like: seed + 1..3)
OWN_SEED_OFFSETS = (0, 1, 2, 3)


def test_corpus_settings(synth: dict) -> dict:
    """Keyword arguments of :func:`dmc.synth.generate_videos` for the test corpus; refuses a
    ``synth.test_seed`` that equals one of the training corpus's own seeds."""
    from dmc.synth import SIZES

    seed, test_seed = synth["seed"], synth["test_seed"]
    if test_seed in {seed + k for k in OWN_SEED_OFFSETS}:
        raise ParamsError(f"synth.test_seed = {test_seed} is a seed of the training corpus "
                          f"(synth.seed + 0..3 = {seed}..{seed + 3}); pick another")
    n = max(2, int(round(synth["test_videos"] * SIZES[synth["size"]])))
    return dict(n_videos=n, seconds=synth["video_seconds"], width=synth["width"], height=synth["height"],
                fps=synth["fps"], audio_rate=synth["audio_rate"], other_containers=synth["other_containers"],
                max_sources=synth["max_sources"], max_distractors=synth["max_distractors"], seed=test_seed,
                control=synth["control"], variants=synth["variants"], portable_audio=synth["portable_audio"])
