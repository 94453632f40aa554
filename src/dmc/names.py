"""Names shared by the CLI, the Snakemake rules and the reports (no heavy imports here)."""

#: Evaluation data sets, each a key of ``data:`` in params.yaml (null: not evaluated).
DATASETS = ("esc50", "esc10", "dcase")
#: Those evaluated with the predefined-fold protocol (the others: DCASE's train/test split).
FOLD_DATASETS = ("esc50", "esc10")
#: Feature methods compared on every data set.
METHODS = ("dmc", "random_init", "logmel_stats")
#: Sweeps of ``dmc sweep`` (params.yaml ``sweeps``), and those that are one-key-at-a-time grids.
SWEEPS = ("seeds", "ablation", "control", "structure")
GRIDS = ("ablation", "structure")
#: Keys of ``synth:`` that only the test corpora read (their own seeds and sizes): the training
#: corpus (``dmc synth videos|esc50|esc10|dcase``, DVC stage ``synth``) reads every other key.
TEST_CORPUS_SYNTH_KEYS = ("test_seed", "test_videos", "multi_seed", "multi_videos")
#: Public annotation files of the localization benchmarks that ``dmc fetch`` knows (dmc.io.annotations)
ANNOTATION_FILES = ("vggss-json", "flickr-test-249", "flickr-test-250", "music-solo-boxes", "music-duet-boxes")
