#!/usr/bin/env bash
# The GPU path checked and measured on one machine (issue 11/29), in one run:
#   benchmarks/gpu_check.sh OUT [--tiny]        (make gpu-check; --tiny: a quick CPU run of the script)
# 1. correctness under bf16 / on CUDA vs CPU / checkpoints across devices (gpu_check.py correctness)
# 2. training throughput and MFU, torch.compile off and on, the paper preset's top kernels
# 3. the whole pipeline (make demo's stages, by hand through the `dmc` CLI) on the GPU at
#    synth.size medium, wall time per stage
# 4. decode scaling: `dmc decode` as 16 shards in 16 processes vs 1 shard, on the same clips
# 5. DDP smoke run: torchrun --nproc_per_node 1 (nccl on CUDA) vs a plain run, one epoch
# and, beside them on four cores, per-file/per-stream hashes of the embedded default made on this
# host under a few CPU switches (issue 27). Writes OUT/gpu.json and OUT/gpu_check.tar.gz (logs and
# every part's JSON). Each part is bounded so that the whole run ends within GPU_CHECK_BUDGET s.
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_check.sh OUT [--tiny]}
TINY=${2:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-500}
START=$(date +%s)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RES=$(mktemp -d)/gpu_check
WORK=$(mktemp -d)
mkdir -p "$RES/logs"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
CORES=$(nproc)
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then DEV=cuda; else DEV=cpu; fi
if [ -n "$TINY" ]; then SIZE=tiny; SHARDS=4; EPOCHS=2; T=--tiny; else SIZE=medium; SHARDS=16; EPOCHS=60; T=; fi
SIZE=${GPU_CHECK_SIZE:-$SIZE}
# GPU_CHECK_PARTS: the groups to run (default all): probe codec basic correctness throughput pipeline
# scaling ddp compile; a second run can take the ones a first run did not finish
PARTS=" ${GPU_CHECK_PARTS:-probe codec basic correctness throughput pipeline scaling ddp compile} "
want() { [[ "$PARTS" == *" $1 "* ]]; }
echo "gpu_check: device $DEV, $CORES cores, size $SIZE, budget $BUDGET s, results in $RES" | tee "$RES/steps.log"

left() { echo $((BUDGET - ($(date +%s) - START))); }
# run NAME TIMEOUT CMD...: log to logs/NAME.log, one line "name rc seconds" in times.tsv
run() {
  local name=$1 limit=$2; shift 2
  local l; l=$(left)
  ((limit > l - 15)) && limit=$((l - 15))
  if ((limit < 5)); then echo -e "$name\tskipped\t0" >> "$RES/times.tsv"; echo "[skip] $name (budget)" | tee -a "$RES/steps.log"; return 0; fi
  local t0 t1 rc; t0=$(date +%s%N)
  # through bash -c: the shell functions below (exported) run under timeout too
  timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" > "$RES/logs/$name.log" 2>&1; rc=$?
  t1=$(date +%s%N)
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( (t1 - t0) / 1000000 ))e-3" >> "$RES/times.tsv"
  echo "[$(date +%T)] $name rc=$rc $(( (t1 - t0) / 1000000 )) ms" | tee -a "$RES/steps.log"
  return 0
}
finish() {
  $PY - "$RES" "$OUT/gpu.json" <<'EOF' || true
import json, sys
from pathlib import Path
res, out = Path(sys.argv[1]), Path(sys.argv[2])
g = {}
for f in sorted(res.glob("*.json")):
    g[f.stem] = json.loads(f.read_text())
probes = g.pop("probe", None)
times = {}
if (res / "times.tsv").exists():
    for line in (res / "times.tsv").read_text().splitlines():
        name, rc, s = line.split("\t")
        times[name] = {"rc": rc, "seconds": round(float(s), 2)}
g["steps"] = times
for k in [k for k in g if k.startswith("hashes_")]:       # per-file hashes stay in the tarball
    h = g.pop(k)
    g.setdefault("corpus_hashes", {})[k] = {"env": h["env"], "seconds": h["seconds"], "files": len(h["files"])}
out.write_text(json.dumps(g, indent=1) + "\n")
EOF
  tar -czf "$OUT/gpu_check.tar.gz" -C "$(dirname "$RES")" gpu_check
  echo "gpu_check: wrote $OUT/gpu.json and $OUT/gpu_check.tar.gz in $(( $(date +%s) - START )) s"
}
trap finish EXIT

GC="$PY $REPO/benchmarks/gpu_check.py"
# -- issue 27: the embedded default made on this host (pinned numpy/PyAV on PROBE_PYTHONPATH), four cores
PROBE_PP=${PROBE_PYTHONPATH:-}${PROBE_PYTHONPATH:+:}$PYTHONPATH
probe() {
  local label=$1 size=$2; shift 2
  local pin=(); command -v taskset > /dev/null && pin=(taskset -c "$((CORES > 4 ? CORES - 4 : 0))-$((CORES - 1))")
  env PYTHONPATH="$PROBE_PP" "$@" "${pin[@]}" $GC corpus_hashes --out "$RES" --size "$size" --label "hashes_$label"
}
AVX512="-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512_VNNI,-AVX512_BF16,-AVX512_FP16"
export PY GC RES PROBE_PP CORES
export -f probe
want probe && (
  run probe_tiny_default 240 probe tiny_default tiny
  run probe_tiny_vpx_c 240 probe tiny_vpx_c tiny VPX_SIMD_CAPS_MASK=0
  run probe_tiny_glibc_no_avx512 240 probe tiny_glibc_no_avx512 tiny GLIBC_TUNABLES=glibc.cpu.hwcaps=$AVX512
  [ -n "$TINY" ] || run probe_small_default 300 probe small_default small
) &

run machine 30 $GC machine --out "$RES"
nvidia-smi > "$RES/logs/nvidia-smi.txt" 2>&1 || true
want codec && run codec_hashes 30 $GC codec_hashes --out "$RES"
want basic && run matmul 60 $GC matmul --out "$RES" $T
want correctness && run correctness 150 $GC correctness --out "$RES" $T
want throughput && run throughput 120 $GC throughput --out "$RES" $T --workers $((CORES / 2))

# -- the whole pipeline on this device, stage by stage through the CLI (as the rules run it)
P="$WORK/pipe"
mkdir -p "$P"
$PY - "$REPO/params.yaml" "$P/params.yaml" "$SIZE" "$SHARDS" "$DEV" "$EPOCHS" <<'EOF'
import sys, yaml
src, dst, size, shards, dev, epochs = sys.argv[1:]
p = yaml.safe_load(open(src))
p["synth"]["size"] = size
p["decode"]["num_shards"] = int(shards)
p["train"].update(device=dev, epochs=int(epochs), num_workers=4)
p["features"]["device"] = p["localize"]["device"] = dev
yaml.safe_dump(p, open(dst, "w"), sort_keys=False)
EOF
cd "$P"
D="$PY -m dmc.pipeline.cli --params params.yaml"
synth_all() {
  $D synth videos --out data/synth/videos --ground-truth data/synth/ground_truth &
  for s in esc50 esc10 dcase; do $D synth $s --out data/synth/$s & done
  wait
}
decode_shards() {   # decode_shards PARAMS VIDEOS OUTDIR N [WORKERS per process, default 1]
  local pids=()
  for ((i = 0; i < $4; i++)); do
    OMP_NUM_THREADS=1 $PY -m dmc.pipeline.cli --params "$1" decode --shard $i --videos "$2" --out "$3/$(printf 'shard-%05d' $i)" --workers "${5:-1}" &
    pids+=($!)
  done
  local rc=0; for pid in "${pids[@]}"; do wait "$pid" || rc=1; done; return $rc
}
evalsets() { for s in esc50 esc10 dcase; do $D evalset $s --out-dir data/evalsets/$s & done; wait; }
extracts() {
  for s in esc50 esc10 dcase; do for m in dmc random_init logmel_stats; do
    $D extract $s --method $m --logmel data/evalsets/$s/logmel.npy --model models/dmc.pt --out data/features/$s/$m.npy &
  done; done; wait
}
export D
export -f synth_all decode_shards evalsets extracts
if want pipeline; then
  run pipe_synth 150 synth_all
  run pipe_decode 60 decode_shards params.yaml data/synth/videos data/decoded "$SHARDS"
  run pipe_decode_index 30 $D decode-index data/decoded/shard-* --out-dir data/decoded
  run pipe_train 240 $D train
  run pipe_evalset 120 evalsets
  run pipe_extract 60 extracts
  run pipe_evaluate 90 $D evaluate
  run pipe_localize 90 $D localize
elif want ddp || want scaling; then   # their clips and shards without the rest of the pipeline
  run pipe_synth_videos 150 $D synth videos --out data/synth/videos --ground-truth data/synth/ground_truth
  run pipe_decode 60 decode_shards params.yaml data/synth/videos data/decoded "$SHARDS"
  run pipe_decode_index 30 $D decode-index data/decoded/shard-* --out-dir data/decoded
fi
cp results/metrics.json "$RES/pipeline_metrics.json" 2>/dev/null
cp results/localization_metrics.json "$RES/pipeline_localization_metrics.json" 2>/dev/null
cp results/train/metrics.json "$RES/pipeline_train_metrics.json" 2>/dev/null
cp results/train/log.csv "$RES/logs/pipeline_train_log.csv" 2>/dev/null

# -- decode scaling: the same clips (the corpus twice, hard-linked) as 1 shard and as 16 (one worker
# per process, as first measured), and as 1 shard in one process with a pool of every core
if want scaling; then
S="$WORK/scale"
mkdir -p "$S/videos"
cp -al data/synth/videos "$S/videos/a" && cp -al data/synth/videos "$S/videos/b"
for n in 1 "$SHARDS"; do
  $PY -c "import sys, yaml; p = yaml.safe_load(open('params.yaml')); p['decode']['num_shards'] = int(sys.argv[1]); yaml.safe_dump(p, open(sys.argv[2], 'w'))" "$n" "$S/p$n.yaml"
done
run decode_1_shard 150 decode_shards "$S/p1.yaml" "$S/videos" "$S/out1" 1
run decode_${SHARDS}_shards 60 decode_shards "$S/p$SHARDS.yaml" "$S/videos" "$S/out$SHARDS" "$SHARDS"
run decode_1_shard_pool 60 decode_shards "$S/p1.yaml" "$S/videos" "$S/outpool" 1 "$(nproc)"   # dmc.io.pool
$PY - "$S" "$SHARDS" "$RES/decode_scaling.json" <<'EOF' || true
import json, sys
from pathlib import Path
s, n, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
times = {l.split("\t")[0]: l.split("\t") for l in (out.parent / "times.tsv").read_text().splitlines()}
clips = sum(1 for f in (s / "videos").rglob("*") if f.is_file() and f.suffix in (".mp4", ".mkv", ".webm"))
segs = {k: sum(sum(1 for _ in open(r)) - 1 for r in (s / k).glob("shard-*/segments.csv")) for k in ("out1", f"out{n}")}
one, many = float(times["decode_1_shard"][2]), float(times[f"decode_{n}_shards"][2])
pool = float(times["decode_1_shard_pool"][2]) if "decode_1_shard_pool" in times else None
out.write_text(json.dumps({"clips": clips, "segments": segs, "shards": int(n), "seconds_1_shard": one,
                           f"seconds_{n}_shards": many, "clips_per_s_1": clips / one, f"clips_per_s_{n}": clips / many,
                           "ratio": one / many, "target_ratio": 12, "seconds_1_shard_pool": pool,
                           "ratio_pool": one / pool if pool else None}, indent=1))
EOF
fi

# -- DDP smoke: torchrun, one process (nccl on CUDA), one epoch vs a plain run with the same params
if want ddp; then
$PY -c "import yaml; p = yaml.safe_load(open('params.yaml')); p['train']['epochs'] = 1; yaml.safe_dump(p, open('p_ddp.yaml', 'w'))"
TRAIN="--params p_ddp.yaml train --decoded data/decoded"
run ddp_plain 90 $PY -m dmc.pipeline.cli $TRAIN --out ddp/plain/m.pt --train-log ddp/plain/log.csv --checkpoints ddp/plain/ck
run ddp_torchrun 120 $PY -m torch.distributed.run --standalone --nproc_per_node 1 -m dmc.pipeline.cli $TRAIN \
  --out ddp/torchrun/m.pt --train-log ddp/torchrun/log.csv --checkpoints ddp/torchrun/ck
$PY - "$RES/ddp.json" "$RES/logs/ddp_torchrun.log" <<'EOF' || true
import json, sys
from pathlib import Path
import torch
files = {n: sorted(str(f.relative_to(Path("ddp") / n)) for f in (Path("ddp") / n).rglob("*") if f.is_file())
         for n in ("plain", "torchrun")}
r = {"files_plain": files["plain"], "files_torchrun": files["torchrun"], "same_files": files["plain"] == files["torchrun"],
     "process_group_line": [l for l in open(sys.argv[2]) if "process group" in l][:1] if Path(sys.argv[2]).exists() else []}
try:
    a = torch.load("ddp/plain/m.pt", map_location="cpu", weights_only=True)["model"]
    b = torch.load("ddp/torchrun/m.pt", map_location="cpu", weights_only=True)["model"]
    r["max_abs_weight_diff"] = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    r["bytes_equal"] = Path("ddp/plain/m.pt").read_bytes() == Path("ddp/torchrun/m.pt").read_bytes()
    la, lb = (Path(f"ddp/{n}/log.csv").read_text().splitlines() for n in ("plain", "torchrun"))
    r["val_acc_plain"], r["val_acc_torchrun"] = la[-1].split(",")[5], lb[-1].split(",")[5]
except Exception as exc:   # a missing model is itself the finding
    r["error"] = repr(exc)
Path(sys.argv[1]).write_text(json.dumps(r, indent=1))
EOF
fi
cd "$REPO"
# -- last, with what is left of the budget: the same rows under torch.compile (compilation is slow)
want compile && run throughput_compile 200 $GC throughput --compile on --out "$RES" $T --workers $((CORES / 2))
wait
