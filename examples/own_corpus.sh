#!/usr/bin/env bash
# Train on your own CoNLL corpus beside ATIS, score it per entity type, tag new text.
#
#   bash examples/own_corpus.sh                                # MiniLM, 300 steps (a few minutes on a CPU)
#   bash examples/own_corpus.sh --data-dir ~/corpora --max-steps 100
#   bash examples/own_corpus.sh --model tiny-t5 --max-steps 10 # a quick try (see make_tiny_t5.py)
#
# Extra arguments go to `hl train` (they override the recipe); RUN sets the run folder.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run="${RUN:-runs/petclinic}"

hl train --recipe "$here/own_corpus/recipe.toml" --output-dir "$run" "$@"
# Per-type precision/recall/F1 on the test split (also in $run/eval.json). To check them with
# your own scorer: hl evaluate "$run" --tasks petclinic --format conll | perl conlleval.pl
hl evaluate "$run" --tasks petclinic --per-label
echo "book a checkup for my cat Tom on friday at 4 pm" | hl tag "$run" --task petclinic --format jsonl
