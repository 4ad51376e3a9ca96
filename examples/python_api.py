"""The Python API in one script: train a small run, load it, tag text, score it per entity type.

    python examples/python_api.py                                  # MiniLM, ATIS (10 %) + petclinic, 300 steps
    python examples/python_api.py --data-dir ~/corpora --max-steps 100
    python examples/python_api.py --model tiny-t5 --max-steps 10    # a quick try (see make_tiny_t5.py)
    python examples/python_api.py --run runs/petclinic              # an existing run: no training

The same run is what ``hl train --recipe examples/own_corpus/recipe.toml`` makes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import hlcli

CORPUS = Path(__file__).resolve().parent / "own_corpus" / "petclinic"
OUTPUT = Path("runs/api-example")
TEXTS = ["book a checkup for my cat Tom on friday at 4 pm", "can Bella get her vaccines tomorrow"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help=f"An existing run or checkpoint folder (default: {OUTPUT}, trained if missing).")
    parser.add_argument("--model", default="minilm", help="Backbone when training (default: minilm).")
    parser.add_argument("--data-dir", help="Folder holding atis/ (default: $HL_DATA_DIR, else the user cache).")
    parser.add_argument("--max-steps", type=int, default=300, help="Training steps (default 300).")
    args = parser.parse_args()

    run = args.run or (OUTPUT if (OUTPUT / "config.json").is_file() else None)  # trained by an earlier call
    if run is None:
        # The settings of hl train, as keyword arguments (or hlcli.train(hlcli.TrainConfig(...))).
        result = hlcli.train(
            tasks=["atis", f"petclinic={CORPUS}"], fraction={"atis": 0.1, "petclinic": 1.0},
            model=args.model, data_dir=args.data_dir, max_steps=args.max_steps, batch_size=16,
            eval_every=args.max_steps, checkpoint_every=args.max_steps, output_dir=str(OUTPUT),
            log=print,  # hl train's progress lines; leave out for silence
        )  # fmt: skip
        run = result.run_dir
        print(f"trained {result.steps} steps into {run}")

    tagger = hlcli.load(run)  # its best checkpoint
    print(f"{tagger}\ntasks: {tagger.tasks}; petclinic types: {tagger.types('petclinic')}")
    for doc in tagger.tag(TEXTS, task="petclinic"):
        print(doc.text)
        print("  " + " ".join(f"{token}/{tag}" for token, tag in zip(doc.tokens, doc.tags)))
        for span in doc.spans:  # character offsets into doc.text
            print(f"  {span.type:<10} {span.start:>3}-{span.end:<3} {span.text!r}")

    scores = tagger.evaluate(split="test", tasks=["petclinic"])  # writes eval.json, as hl evaluate does
    print(f"petclinic test F1 {scores.scores['petclinic']['f1']:.4f}")
    for label, s in scores.per_label["petclinic"].items():
        print(f"  {label:<10} P {s['precision']:.4f}  R {s['recall']:.4f}  F1 {s['f1']:.4f}  support {s['support']}")


if __name__ == "__main__":
    try:
        main()
    except hlcli.HLError as error:  # bad paths, unknown tasks...: the one-line message hl prints
        raise SystemExit(f"error: {error}") from None
