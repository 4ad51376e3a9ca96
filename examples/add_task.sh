#!/usr/bin/env bash
# Add a task to a trained run with `hl adapt`, then serve one task alone with `hl export`
# (the README's demo). The old tasks keep their weights bitwise; the export tags like the run.
#
#   python examples/make_tiny_t5.py path/to/t5-tokenizer    # once: writes ./tiny-t5
#   bash examples/add_task.sh --data-dir ~/corpora          # needs atis, snips and restaurant
#   bash examples/add_task.sh --model path/to/t5 --max-steps 400 --lr 3e-4
#
# Options: --model (default tiny-t5), --data-dir (default $HL_DATA_DIR), --max-steps (of the
# base run, default 40; the added task trains half as many), --lr (default 1e-2, for tiny-t5),
# --out (folder for the runs, default runs).
set -euo pipefail
model=tiny-t5 steps=40 lr=1e-2 out=runs
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2" ;;
    --data-dir) export HL_DATA_DIR="$2" ;;
    --max-steps) steps="$2" ;;
    --lr) lr="$2" ;;
    --out) out="$2" ;;
    *) echo "add_task.sh: unknown option $1 (expected --model, --data-dir, --max-steps, --lr, --out)" >&2; exit 2 ;;
  esac
  shift 2
done
base="$out/two-tasks" added="$out/two-tasks+restaurant" half=$(( (steps + 1) / 2 ))

hl train --tasks atis,snips --model "$model" --fraction 0.01 --max-steps "$steps" --eval-every "$steps" \
  --warmup-steps 0 --lr "$lr" --max-val-examples 8 --output-dir "$base"
# A new run folder; the base run is only read. Everything it trained stays frozen.
hl adapt "$base" --tasks restaurant --max-steps "$half" --eval-every "$half" --output-dir "$added"
# atis's generated adapters as plain tensors: no hypernetwork needed to serve it.
hl export "$added" --task atis -o "$out/exported-atis"
sentence='show me flights from boston to denver on monday morning'
echo "$sentence" | hl tag "$out/exported-atis" --task atis
echo "$sentence" | hl tag "$added" --task atis
