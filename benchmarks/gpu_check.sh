#!/usr/bin/env bash
# GPU check of issues 10, 18 and 20: one script, one call on a lent GPU machine, about 10 minutes at most.
#
#   benchmarks/gpu_check.sh DATA_DIR TOKENIZER_DIR [--log FILE] [--work DIR] [--cpu-dry-run]
#
# DATA_DIR holds the corpora (the seven of ../shared/data; atis/ alone for --cpu-dry-run);
# TOKENIZER_DIR the T5 tokenizer.
# Steps, each under its own `timeout` (seconds in brackets), all output appended to the log:
#   1. a T5-base-shaped backbone with random weights, saved with the tokenizer          [60]
#   2. hl train: 300 steps, bf16, atis,snips,mtop at 10 %, batch 32 (steps/s from the log) [150]
#   3. hl evaluate on ATIS test                                                        [60]
#   4. hl tag: 512 ATIS test sentences from a text file                                [45]
#   5. bench_train_step.py: dispatch counts [40], ATIS batches of 32 [50], 128/128 tokens (MFU) [40]
#   6. bench_tag.py: hl tag against the reference decoder, 512 sentences               [90]
#   7. attention kernels: a HyperLoader T5 forward+backward under the profiler: no cuDNN fused
#      attention, and torch's cuDNN flag as it was before (issue 20: scoped, not process-wide) [45]
#   8. hl train of recipes/paper-table4.toml's settings (all seven tasks at 10 %, batch 128,
#      summed loss), bf16, 300 steps (issue 18)                                            [120]
# Worst case 700 s of timeouts, above one device call's 600 s (the log under $OUT comes back
# even then); a run that works takes far less. CUDA is required (the
# script stops at once without it) except with --cpu-dry-run, which runs the same steps on a
# CPU with a micro shape and tiny sizes, to check the script itself (timeouts times
# $TIMEOUT_SCALE, default 10 there).
#
# Carrying what the GPU machine lacks (it has torch, transformers, peft, typer, rich, pandas,
# safetensors, accelerate, numpy, scikit-learn; not seqeval, which `hl evaluate` and
# bench_tag.py import, nor the corpora or the tokenizer, and it cannot download). From the
# repository root on the development machine:
#   echo /.gpu/ >> .git/info/exclude
#   mkdir -p .gpu/data .gpu/whl
#   cp -r ../shared/data/* .gpu/data/   # the seven corpora, ~29 MiB (step 8 trains on all of them)
#   cp -r ../shared/tokenizers/t5 .gpu/t5                                            # ~3 MiB
#   python -m pip wheel --no-deps -w .gpu/whl seqeval==1.2.2   # pure Python; needs numpy, scikit-learn (there)
# then one device `run` with carry [".gpu"] and the command
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl && \
#   PYTHONPATH=/tmp/site bash benchmarks/gpu_check.sh .gpu/data .gpu/t5 --log $OUT/gpu_check.log
# (timeout_s 540). The repository itself travels with the call and is imported from its root.
# Record the log's figures, card, versions and date in docs/PERFORMANCE.md.

set -uo pipefail

usage() { echo "usage: $0 DATA_DIR TOKENIZER_DIR [--log FILE] [--work DIR] [--cpu-dry-run]" >&2; exit 2; }
[ $# -ge 2 ] || usage
DATA=$1 TOKENIZER=$2
shift 2
LOG=${OUT:-.}/gpu_check.log WORK=$(mktemp -d -t hl-gpu-check-XXXX) DRY=0
while [ $# -gt 0 ]; do
    case $1 in
        --log) LOG=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --cpu-dry-run) DRY=1; shift ;;
        *) usage ;;
    esac
done
CORPORA=(atis snips mtop mit_movie mit_movie_trivia mit_restaurant mtod)
[ $DRY = 1 ] && CORPORA=(atis)
for need in "${CORPORA[@]/#/$DATA/}" "$TOKENIZER"; do
    [ -e "$need" ] || { echo "$0: $need: not found (DATA_DIR needs ${CORPORA[*]}; TOKENIZER_DIR a T5 tokenizer)" >&2; exit 1; }
done
DATA=$(cd "$DATA" && pwd) TOKENIZER=$(cd "$TOKENIZER" && pwd)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HL_DATA_DIR=$DATA TRANSFORMERS_OFFLINE=1 HF_HUB_OFFLINE=1
mkdir -p "$WORK" "$(dirname "$LOG")"

if [ $DRY = 1 ]; then
    DEVICE=cpu DTYPE=fp32 PRECISION=no SHAPE=micro STEPS=3 FRACTION=0.01 N_TAG=16 REPEATS=2 LENGTHS=16/16 TAGS=atis
    TABLE4=(--tasks atis --fraction 0.01 --batch-size 8)
    THREADS=(--threads 1)
    SCALE=${TIMEOUT_SCALE:-10}  # a shared development CPU is far slower than the GPU machine's
else
    DEVICE=cuda DTYPE=bf16 PRECISION=bf16 SHAPE=t5-base STEPS=300 FRACTION=0.1 N_TAG=512 REPEATS=10 LENGTHS=128/128 TAGS=atis,snips,mtop
    TABLE4=(--fraction 0.1)  # the recipe's own tasks (all seven) and batch 128
    THREADS=()
    SCALE=${TIMEOUT_SCALE:-1}
    if ! $PY -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "$0: no CUDA device visible to PyTorch: this check needs a GPU (use --cpu-dry-run to test the script on a CPU)" >&2
        exit 1
    fi
fi

log() { echo "$*" | tee -a "$LOG"; }
# step SECONDS NAME COMMAND...: run under timeout, output to the log, wall time and exit status after it.
FAILED=0
step() {
    local limit=$1 name=$2; shift 2
    log "== $name ($(date -u +%T), limit $((limit * SCALE))s): $*"
    local start=$SECONDS
    limit=$((limit * SCALE))
    timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
    local rc=$?
    [ $rc = 0 ] || FAILED=$((FAILED + 1))
    log "== $name: exit $rc after $((SECONDS - start)) s$([ $rc = 124 ] && echo ' (timed out)')"
}

log "# gpu_check $(date -u +%FT%TZ) dry_run=$DRY device=$DEVICE shape=$SHAPE commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
$PY - >>"$LOG" 2>&1 <<'EOF'
import platform, torch, transformers
print("python", platform.python_version(), "torch", torch.__version__, "transformers", transformers.__version__)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(), "cuda", torch.version.cuda)
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv >>"$LOG" 2>&1

BACKBONE=$WORK/backbone RUN=$WORK/run
step 60 "backbone" $PY - "$SHAPE" "$TOKENIZER" "$BACKBONE" <<'EOF'
import sys
from benchmarks import _common as common
shape, tokenizer_dir, out = sys.argv[1:]
tokenizer = common.load_tokenizer(tokenizer_dir)
common.t5_backbone(shape, tokenizer).save_pretrained(out)
tokenizer.save_pretrained(out)
print("saved", shape, "to", out)
EOF

step 150 "hl train" $PY -m hlcli train --model "$BACKBONE" --tasks "$TAGS" --fraction $FRACTION --batch-size 32 \
    --max-steps $STEPS --warmup-steps 30 --eval-every $STEPS --checkpoint-every $STEPS --max-val-examples 64 \
    --mixed-precision $PRECISION --data-dir "$DATA" --output-dir "$RUN" --no-progress
# Its train.log has a timestamped line every log_every steps: steady-state steps/s from 100 to 300.
[ -e "$RUN/train.log" ] && { log "-- $RUN/train.log"; cat "$RUN/train.log" >>"$LOG"; }
step 60 "hl evaluate" $PY -m hlcli evaluate "$RUN" --tasks atis --batch-size 256 --data-dir "$DATA" --output "$WORK/eval.json"

$PY - "$DATA" "$N_TAG" "$WORK/atis_test.txt" <<'EOF'
import sys
from hlcli.data.tasks import load_split
data, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
examples = load_split("atis", "test", data_dir=data)
with open(out, "w", encoding="utf-8") as f:
    for i in range(n):
        f.write(" ".join(examples[i % len(examples)].tokens) + "\n")
EOF
tag_timed() {  # hl tag with its wall time (model loading included) in the log
    local start=$(date +%s%N)
    $PY -m hlcli tag "$RUN" --task atis --input "$WORK/atis_test.txt" --output "$WORK/tags.txt" --batch-size 256 || return
    echo "hl tag: $(wc -l < "$WORK/tags.txt") sentences in $((($(date +%s%N) - start) / 1000000)) ms (model loading included)"
}
export -f tag_timed
export PY RUN WORK
step 45 "hl tag" bash -c tag_timed

COMMON=(--tokenizer "$TOKENIZER" --data-dir "$DATA" --device $DEVICE --dtype $DTYPE --config $SHAPE "${THREADS[@]}")
step 40 "bench_train_step counts" $PY -m benchmarks.bench_train_step "${COMMON[@]}" --count-ops --batch-size 32 --json "$WORK/counts.json"
step 50 "bench_train_step atis" $PY -m benchmarks.bench_train_step "${COMMON[@]}" --batch-size 32 --repeats $REPEATS --warmup 2 \
    --json "$WORK/train_step.json"
step 40 "bench_train_step $LENGTHS" $PY -m benchmarks.bench_train_step "${COMMON[@]}" --lengths $LENGTHS --repeats $REPEATS --warmup 2 \
    --models hyperloader,peft_lora --json "$WORK/train_step_128.json"
step 90 "bench_tag" $PY -m benchmarks.bench_tag "${COMMON[@]}" --train-steps 0 --reference-stop gold --n-sentences $N_TAG \
    --batch-size 256 --repeats 1 --work-dir "$WORK/tagwork" --json "$WORK/tag.json"

step 45 "attention kernels" $PY - "$BACKBONE" "$DEVICE" <<'EOF'
import sys
import torch
from torch.profiler import ProfilerActivity, profile
from hlcli.data.example import Example
from hlcli.methods import build_model
from hlcli.methods.base import TaskSpec
backbone, device = sys.argv[1:]
before = torch.backends.cuda.cudnn_sdp_enabled()
model = build_model("hyperloader", backbone=backbone, tasks=[TaskSpec("ner", ["LOC", "PER"])])
model = model.to(device, torch.bfloat16 if device == "cuda" else torch.float32).train()
example = Example("ner", ("John", "lives", "in", "Paris"), ("B-PER", "O", "O", "B-LOC"))
batch = {k: v.to(device) for k, v in model.collate("ner", [example] * 8).items()}
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
with profile(activities=activities) as prof:
    model.loss("ner", batch).backward()
    if device == "cuda":
        torch.cuda.synchronize()
names = sorted({e.name for e in prof.events() if "attention" in e.name.lower()})
print("attention ops:", names)
print("cuDNN SDPA flag before / after:", before, torch.backends.cuda.cudnn_sdp_enabled())
assert not [n for n in names if "cudnn" in n.lower()], "cuDNN fused attention ran"
assert torch.backends.cuda.cudnn_sdp_enabled() == before, "the flag was left changed"
EOF

step 120 "hl train paper-table4" $PY -m hlcli train --recipe recipes/paper-table4.toml --model "$BACKBONE" "${TABLE4[@]}" \
    --max-steps $STEPS --warmup-steps 30 --eval-every $STEPS --checkpoint-every $STEPS --max-val-examples 64 \
    --mixed-precision $PRECISION --data-dir "$DATA" --output-dir "$WORK/run-table4" --no-progress
[ -e "$WORK/run-table4/train.log" ] && { log "-- $WORK/run-table4/train.log"; cat "$WORK/run-table4/train.log" >>"$LOG"; }

for f in "$WORK"/*.json; do [ -e "$f" ] && { log "-- $(basename "$f")"; cat "$f" >>"$LOG"; }; done
log "# gpu_check done $(date -u +%FT%TZ): $FAILED step(s) failed; log $LOG"
[ $FAILED = 0 ]
