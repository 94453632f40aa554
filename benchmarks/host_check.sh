#!/usr/bin/env bash
# Does this host make the embedded default's bytes? (issue 27; docs/data.md "Checking a host")
# Regenerates every manifested data folder of the embedded default (data/synth, data/decoded,
# data/evalsets, the test corpus data/synth_test and data/decoded_test) with the `dmc` CLI alone
# (no Snakemake, no DVC: it runs where only PyAV, NumPy, torch and the package's needs are
# installed) in a temporary root, then compares them with the committed results/manifest
# (`dmc verify --root`), naming each differing file and the stream or array that differs.
#   benchmarks/host_check.sh [OUT]   OUT: also write this host's manifests there (dmc verify --write)
#   PARAMS=other.yaml benchmarks/host_check.sh   (another params file: not the embedded default,
#   so verify compares nothing; a quick run of the script itself)
# Exit status: dmc verify's (0 every file matches, 1 a difference).
set -uo pipefail
OUT=${1:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PY=${PYTHON:-python3}
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
PARAMS=${PARAMS:-params.yaml}
dmc() { "$PY" -m dmc.pipeline.cli --params "$PARAMS" "$@"; }
W=$(mktemp -d)
D=$W/data
mkdir -p "$D/synth" "$D/synth_test" "$D/evalsets" "$D/decoded"
t0=$(date +%s)
step() { echo "[$(( $(date +%s) - t0 )) s] $*" >&2; }
dmc check-params || exit 2

step "synth: training videos, ESC-50/ESC-10/DCASE-like sets, test corpus"
dmc synth videos --out "$D/synth/videos" --ground-truth "$D/synth/ground_truth" &
for e in esc50 esc10 dcase; do dmc synth "$e" --out "$D/synth/$e" & done
dmc synth test --out "$D/synth_test/videos" --ground-truth "$D/synth_test/ground_truth" &
wait

step "decode: the training shards and the test corpus; eval-set log-mels"
shards=$("$PY" -c "import yaml; print(yaml.safe_load(open('$PARAMS'))['decode']['num_shards'])")
for ((i = 0; i < shards; i++)); do
  s=$(printf 'shard-%05d' "$i")
  dmc decode --shard "${s#shard-}" --videos "$D/synth/videos" --out "$D/decoded/$s" &
done
dmc decode --videos "$D/synth_test/videos" --out-dir "$D/decoded_test" &
for e in esc50 esc10 dcase; do dmc evalset "$e" --root "$D/synth/$e" --out-dir "$D/evalsets/$e" & done
wait
dmc decode-index "$D"/decoded/shard-* --out-dir "$D/decoded"

step "verify against results/manifest"
if [ -n "$OUT" ]; then
  mkdir -p "$OUT"
  dmc verify --write --root "$W" --manifest-dir "$OUT"
fi
dmc verify --root "$W"
rc=$?
step "done (rc $rc); the regenerated data stay in $W"
exit $rc
