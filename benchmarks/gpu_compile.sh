#!/usr/bin/env bash
# GPU lever of docs/PERFORMANCE.md §6.5: a training step under torch.compile, one device call.
#
#   benchmarks/gpu_compile.sh DATA_DIR TOKENIZER_DIR [--log FILE] [--cpu-dry-run]
#
# §6.5 found the T5-base step bound by the host issuing ~23,000 aten ops (8 µs each), not by the
# GPU (MFU 3 %). Compiling the loss (forward, and the backward through AOTAutograd) fuses
# element-wise ops into fewer kernels; mode reduce-overhead also replays the step as CUDA graphs,
# which removes most of the host's work per launch. Same shapes as §6.5's MFU row: T5-base,
# bf16, batch 32, 128/128 synthetic tokens (static, so the graphs are captured once). Steps, each
# under its own `timeout` (seconds in brackets), output appended to the log:
#   1. eager: hyperloader and peft LoRA, 10 timed steps each (33 s on the H200)            [90]
#   2. --compile default, hyperloader alone: compile time and graph breaks reported        [300]
#   3. --compile reduce-overhead (CUDA graphs), hyperloader alone (inductor's cache warm)  [150]
# Worst case 540 s; run with timeout_s 580. The first try (2026-12-04, both models in each
# compiled step, 210 s each) timed out in steps 2 and 3 while compiling: hence one model per
# compiled step and the longer first timeout. Carry `.gpu` as gpu_check.sh's header says (this
# script needs only .gpu/data/atis and .gpu/t5; no wheel: it does not import seqeval), then:
#   bash benchmarks/gpu_compile.sh .gpu/data .gpu/t5 --log $OUT/gpu_compile.log
# --cpu-dry-run: the micro shape, 16/16 tokens, batch 4, step 1 with hyperloader and static (peft
# may be absent), timeouts x10: checks the script on the development machine.

set -uo pipefail

usage() { echo "usage: $0 DATA_DIR TOKENIZER_DIR [--log FILE] [--cpu-dry-run]" >&2; exit 2; }
[ $# -ge 2 ] || usage
DATA=$1 TOKENIZER=$2
shift 2
LOG=${OUT:-.}/gpu_compile.log DRY=0
while [ $# -gt 0 ]; do
    case $1 in
        --log) LOG=$2; shift 2 ;;
        --cpu-dry-run) DRY=1; shift ;;
        *) usage ;;
    esac
done
for need in "$DATA/atis" "$TOKENIZER"; do
    [ -e "$need" ] || { echo "$0: $need: not found (DATA_DIR needs atis/; TOKENIZER_DIR a T5 tokenizer)" >&2; exit 1; }
done

if [ $DRY = 1 ]; then
    SCALE=10
    SHAPE=(--config micro --device cpu --dtype fp32 --threads 1 --batch-size 4 --lengths 16/16)
    MODELS=hyperloader,static
else
    SCALE=1
    python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
        || { echo "$0: no CUDA device visible to PyTorch (use --cpu-dry-run to check the script)" >&2; exit 1; }
    SHAPE=(--config t5-base --device cuda --dtype bf16 --batch-size 32 --lengths 128/128)
    MODELS=hyperloader,peft_lora
fi

step() {  # step NAME SECONDS ARGS...: one benchmark under a timeout, its exit status logged
    local name=$1 seconds=$(( $2 * SCALE ))
    shift 2
    echo "== $name (timeout ${seconds}s) $(date -u +%H:%M:%S)" | tee -a "$LOG"
    timeout "$seconds" python3 -m benchmarks.bench_train_step "${SHAPE[@]}" --tokenizer "$TOKENIZER" \
        --data-dir "$DATA" "$@" >> "$LOG" 2>&1
    echo "== $name: exit $? $(date -u +%H:%M:%S)" | tee -a "$LOG"
}

{ echo "gpu_compile.sh $(git rev-parse --short HEAD 2>/dev/null) $(date -u)"
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
} >> "$LOG" 2>&1
step "1. eager" 90 --repeats 10 --warmup 2 --models $MODELS
step "2. compile default" 300 --repeats 10 --warmup 3 --compile default --models hyperloader
step "3. compile reduce-overhead" 150 --repeats 10 --warmup 3 --compile reduce-overhead --models hyperloader
echo "log: $LOG"
