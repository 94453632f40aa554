"""The untouched multi-source test corpus (issue 33): mixtures and duets with per-source stems, from
their own seed.

``dmc synth multi --out data/synth_multi/videos --stems data/synth_multi/stems --ground-truth
data/synth_multi/ground_truth`` (Snakemake rule ``synth_multi``, DVC stage ``synth_multi``) draws
``synth.multi_videos`` clips (scaled by ``synth.size`` as every count of the corpus) from
``synth.multi_seed`` with :func:`dmc.synth.multisource.generate_multisource`: MUSIC-Synthetic-like
mixtures (four objects of distinct classes, two sounding, two silent of classes that sound in other
clips) and duets (two objects, both sounding), each with its sources' audio stems. Clip length,
frame size and rate, audio rate, containers, variants and portable audio are the training
corpus's. No step that makes a choice reads it: only ``decode_multi`` (``dmc decode`` into
``data/decoded_multi``) and the steps that score on it.
"""

from __future__ import annotations

from dmc.pipeline.params import ParamsError
from dmc.pipeline.testcorpus import OWN_SEED_OFFSETS


def multi_corpus_settings(synth: dict) -> dict:
    """Keyword arguments of :func:`dmc.synth.multisource.generate_multisource` for the multi-source
    test corpus; refuses a ``synth.multi_seed`` that is a seed of the training corpus (``synth.seed``
    + 0..3) or the test corpus's ``synth.test_seed``."""
    from dmc.synth import SIZES

    seed, test_seed, multi_seed = synth["seed"], synth["test_seed"], synth["multi_seed"]
    if multi_seed in {seed + k for k in OWN_SEED_OFFSETS}:
        raise ParamsError(f"synth.multi_seed = {multi_seed} is a seed of the training corpus "
                          f"(synth.seed + 0..3 = {seed}..{seed + 3}); pick another")
    if multi_seed == test_seed:
        raise ParamsError(f"synth.multi_seed = {multi_seed} is the test corpus's synth.test_seed; pick another")
    n = max(2, int(round(synth["multi_videos"] * SIZES[synth["size"]])))
    return dict(n_videos=n, seconds=synth["video_seconds"], width=synth["width"], height=synth["height"],
                fps=synth["fps"], audio_rate=synth["audio_rate"], other_containers=synth["other_containers"],
                seed=multi_seed, variants=synth["variants"], portable_audio=synth["portable_audio"])
