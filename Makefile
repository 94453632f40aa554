# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, install the pinned dependencies, run the whole pipeline
#               on the embedded synthetic corpus with `dvc repro` (which drives Snakemake)
#   make test   the test suite (what .ci/run calls first)
#   make cluster-deps test-cluster   real SLURM, SSH remote and two-node torchrun on localhost
#               (root: apt-get installs the daemons; .ci/run calls it after make test)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

.PHONY: docs docs-write gpu-check install hooks demo test benchmark-content-free benchmark-music-content-free test-fast test-cluster cluster-deps seeds ablation compare control structure headline multisource-val multisource-frozen heatmap-choice count-choice bench bench-quick bench-demo bench-decode bench-decode-memory bench-evaluate bench-portable lock clean

install: $(STAMP) hooks

# requirements.lock pins every package (pip freeze of a working install), so two
# installs get the same versions; pyproject.toml pins torch/torchaudio 2.11.0.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

# git checkout of another committed result restores its data too: DVC's post-checkout hook
# runs `dvc checkout` (only that hook: DVC's pre-push hook would need a remote). Snakemake then
# follows DVC's record by itself (src/dmc/pipeline/dvcsync.py), so nothing else is needed.
HOOK := $(shell git rev-parse --git-path hooks 2>/dev/null)/post-checkout
hooks:
	@if git rev-parse --git-dir > /dev/null 2>&1 && { [ ! -e $(HOOK) ] || grep -q 'git-hook post-checkout' $(HOOK); }; then \
	  mkdir -p $(dir $(HOOK)) && printf '#!/bin/sh\nexec "%s" git-hook post-checkout "$$@"\n' "$(BIN)/dvc" > $(HOOK) \
	  && chmod +x $(HOOK); fi

demo: install
	dvc repro
	@echo; echo "== decode summary (data/decoded/summary.json)"; cat data/decoded/summary.json
	@echo; echo "== held-out audiovisual correspondence (results/train/log.csv)"; \
	  head -1 results/train/log.csv; tail -1 results/train/log.csv
	@echo; echo "== results/tables/summary.md"; cat results/tables/summary.md
	@echo; test ! -f results/localization/table.md || sed -n '1,10p' results/localization/table.md
	@echo; test ! -f results/benchmark/vggss.md || sed -n '1,12p' results/benchmark/vggss.md
	@echo; dvc status
	@echo; echo "== the data against the committed per-file manifests (results/manifest; docs/data.md \"Checking a host\")"
	@# On a host whose CPU makes other libopus bytes (until synth.portable_audio is the default) verify names
	@# the files that differ and exits 1; the run itself is complete, so make reports it and does not fail
	-dmc verify

test: install
	$(BIN)/python -m pytest -q -m "not cluster"

# Everything but the tests marked slow (end-to-end pipeline, training, the trained-model
# fixture, SIGKILL decoding, determinism subprocesses): what to run while developing.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not cluster"

# The daemons of the cluster tests, from Debian's packages (root, or sudo), and the Python
# extras they drive (snakemake-executor-plugin-slurm, dvc-ssh), pinned by requirements.lock.
CLUSTER_DEBS := slurmctld slurmd slurm-client munge openssh-server openssh-client
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
cluster-deps: install
	@if ! dpkg -s $(CLUSTER_DEBS) >/dev/null 2>&1; then \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(CLUSTER_DEBS); fi
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test,cluster]'

# Starts (and stops) munged, slurmctld, slurmd and sshd on localhost: needs root.
test-cluster: install
	$(BIN)/python -m pytest -q -m cluster

# The content-free baselines on the full public VGG-SS annotations (tests/data/benchmarks/vggss.json),
# scored by the published protocol: results/benchmarks/vggss_content_free/ (docs/benchmarks-localization.md)
benchmark-content-free: install
	dmc localize --benchmark vggss --annotations tests/data/benchmarks/vggss.json --content-free \
	  --benchmark-out results/benchmarks/vggss_content_free
	rm -f results/benchmarks/vggss_content_free/vggss_per_clip.csv

# DSOL's MUSIC box files (fetched, checksum-verified), class-aware and class-blind, baselines only
benchmark-music-content-free: install
	dmc fetch music-solo-boxes --out data/benchmarks/music
	dmc fetch music-duet-boxes --out data/benchmarks/music
	for k in solo duet; do \
	  dmc localize --benchmark music-$$k --annotations data/benchmarks/music/$${k}test.json --content-free \
	    --benchmark-out results/benchmarks/music_content_free || exit 1; \
	  rm -f results/benchmarks/music_content_free/music-$${k}_per_clip.csv \
	    results/benchmarks/music_content_free/music-$${k}_classaware_per_clip.csv; \
	done

# Seeds and ablations as DVC experiments (grid: params.yaml `sweeps`): queue, run, and
# aggregate dvc.api.exp_show() into results/tables/seeds.{md,csv} and results/studies/<sweep>/. JOBS=N runs
# N experiments at once.
JOBS ?= 1
seeds: install
	dmc sweep seeds --queue --run --aggregate --jobs $(JOBS)

ablation: install
	dmc sweep ablation --queue --run --aggregate --jobs $(JOBS)

# One change against the committed default (docs/compare.md): make compare SET="train.clusters=5"
# [SEEDS=5] [JOBS=N]. The default and the change under seeds 0 .. SEEDS-1 as DVC experiments (runs
# already done with the same params and code are reused), paired by seed and clip: the differences
# with hierarchical-bootstrap 95 % intervals and a verdict, in results/compare/<slug>/. Without
# JOBS, one experiment per 4 cores runs at once.
SEEDS ?= 5
compare: install
	@test -n '$(SET)' || { echo 'make compare: give SET="key=value ..." (e.g. SET="train.clusters=5")'; exit 2; }
	dmc compare $(SET) --seeds $(SEEDS) $(if $(filter-out file,$(origin JOBS)),--jobs $(JOBS))

# The headline on the untouched test corpus (issue 26): train the default and sweeps.headline
# (one clustering iteration) under sweeps.headline_seeds into models/headline/ (dmc train's
# Trainer; runs already there are kept; `python -m dmc.studies.headline --queue --run` does the
# same as DVC experiments), score each model on the test corpus (dmc.pipeline.heldout) and write
# results/headline.md|csv with clip-bootstrap intervals. Needs the test corpus and the ESC-like
# log-mel: `dvc repro decode_test evalset@esc50` first.
headline: install
	$(BIN)/python -m dmc.studies.headline --models-dir models/headline --train-models

# Why DMC does not separate sources (issue 33 item 7), on a validation multi-source corpus only:
# k = 5 and the clustering iterations (dmc compare's experiments, make headline's models); mixtures in
# the training corpus, z, the budget and k = 16 (trained here); the maps' agreement temperature and
# heat-map rule (the default's models) -> results/studies/multisource_val/study.md
multisource-val: install
	$(BIN)/python -m dmc.studies.multisource_val --train --models-dir models/headline --with-experiments

# The configuration multisource-val chose (after its round 2), frozen and scored once on the untouched
# corpora with the headline's rows (its models from multisource-val; the network without clustering
# trained here) -> results/studies/multisource_frozen_round2/headline_multi.md (issue 33's targets
# table); round 1's: --round 1 -> results/studies/multisource_frozen/
multisource-frozen: install
	$(BIN)/python -m dmc.studies.multisource_frozen --round 2

# The heat-map rule and agreement temperature scored on the val split with the seeds sweep's
# models (results/studies/heatmap_choice/heatmap_choice.md): run after `make seeds`
heatmap-choice: install
	$(BIN)/python -m dmc.studies.heatmap_choice

# The multi-source count rule scored on the val split (cut points fitted on the train split) with
# the seeds sweep's models (results/studies/count_choice/count_choice.md): run after `make seeds`
count-choice: install
	$(BIN)/python -m dmc.studies.count_choice

# The clustering's structure (params.yaml sweeps.structure: squash placement, first centers),
# one key at a time beside the default, under sweeps.ablation_seeds
structure: install
	dmc sweep structure --queue --run --aggregate --jobs $(JOBS)

# The shortcut control (params.yaml sweeps.control: sounding objects not drawn) beside the default
control: install
	dmc sweep control --queue --run --aggregate --jobs $(JOBS)

# Every benchmark on the current code (benchmarks/run.py): decode (pool, one worker, naive, PyAV
# floor, start-up costs, 16-core model), decode memory, training steps on the CPU, evaluation, the
# localization step; each into benchmarks/results/<host>/<name>.json with the commit, CPU, cores and
# load average, then benchmarks/results/summary.md (the docs include it). Run it on a quiet machine.
bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/summary.py

# The same at small sizes into benchmarks/results/quick/ (git-ignored): checks the harness only.
bench-quick: install
	$(BIN)/python benchmarks/run.py --quick

# Where make demo spends its time: a fresh copy of the project, install and each DVC stage timed
# (benchmarks/results/<host>/demo_stages.json and .md); needs the package index for the install.
bench-demo: install
	$(BIN)/python benchmarks/demo_stages.py --install
	$(BIN)/python benchmarks/summary.py

bench-decode: install
	$(BIN)/python benchmarks/decode.py

# Peak memory of `dmc decode --shard` for shards of 1x, 4x, 16x the clips (README, Benchmarks).
bench-decode-memory: install
	$(BIN)/python benchmarks/decode_memory.py --clips 20000 --per-shard 250

# Extraction + SVM evaluation on an ESC-50-sized set (2000 clips); target < 5 minutes.
bench-evaluate: install
	$(BIN)/python benchmarks/evaluate.py

# Portable against fast CPU training (train.portable) on the embedded default's step, side by side:
# benchmarks/results/portable_training_<host>.json (docs/reproducibility.md; beside gpu.json, not a make bench file)
bench-portable: install
	$(BIN)/python benchmarks/portable_training.py

# Refresh the lock after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

# The documentation site (docs/, mkdocs.yml) into site/; the tests build it with --strict too.
# First the include regions: every number of README.md and docs/ from its committed file
# (docs/contributing.md); `make docs-write` regenerates them after a new result.
docs: install
	$(BIN)/dmc docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

docs-write: install
	$(BIN)/dmc docs --write

clean:
	rm -rf data models .snakemake results/metrics.json results/tables results/figures results/plots results/train \
	  results/localization results/localization_metrics.json

# The GPU path checked and measured in one run on a CUDA machine (README "GPU"): bf16 and
# CUDA-vs-CPU correctness, training throughput and MFU, the pipeline on the GPU, decode
# scaling, a DDP smoke run. Figures in GPU_OUT (gpu.json and a tarball of logs).
GPU_OUT ?= benchmarks/results/gpu-run
gpu-check: install
	PYTHON=$(BIN)/python bash benchmarks/gpu_check.sh $(GPU_OUT)
