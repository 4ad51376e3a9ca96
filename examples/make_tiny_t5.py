"""Make ``tiny-t5``: a random 2-layer T5 (d_model 32) with a real T5 tokenizer, saved like a hub model.

The README's ``hl adapt`` / ``hl export`` demo and these examples pass ``--model tiny-t5``: a
backbone that trains in seconds on a CPU, to try the commands (its tags are poor: it is random and
tiny). Any folder with a T5 tokenizer works (``tokenizer.json`` / ``spiece.model``), e.g. one saved
with ``AutoTokenizer.from_pretrained("t5-base").save_pretrained("t5-tokenizer")`` where the hub is
reachable.

    python examples/make_tiny_t5.py path/to/t5-tokenizer                # writes ./tiny-t5
    python examples/make_tiny_t5.py path/to/t5-tokenizer -o my-t5 --d-model 64 --layers 4
    hl train --tasks atis --model tiny-t5 --max-steps 40 --lr 1e-2
"""

from __future__ import annotations

import argparse
from pathlib import Path


def make_tiny_t5(tokenizer: str | Path, output: str | Path, *, d_model: int = 32, layers: int = 2, seed: int = 0) -> int:
    """Write the model and the tokenizer to ``output``; return the number of parameters."""
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(str(tokenizer))
    config = T5Config(
        vocab_size=-(-len(tok) // 128) * 128, d_model=d_model, d_ff=2 * d_model, num_layers=layers, num_heads=2, d_kv=d_model // 2,
        decoder_start_token_id=tok.pad_token_id, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip  (vocabulary rounded up to a multiple of 128, as T5's own 32,128 rows)
    torch.manual_seed(seed)  # the same tiny-t5 on every machine
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(output)  # safetensors
    tok.save_pretrained(output)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tokenizer", help="Folder (or hub name, when online) of a T5 tokenizer.")
    parser.add_argument("-o", "--output", default="tiny-t5", help="Folder to write (default: tiny-t5).")
    parser.add_argument("--d-model", type=int, default=32, help="Hidden size (default 32).")
    parser.add_argument("--layers", type=int, default=2, help="Encoder and decoder layers (default 2).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count = make_tiny_t5(args.tokenizer, args.output, d_model=args.d_model, layers=args.layers, seed=args.seed)
    print(f"wrote {args.output}: a random T5, {count / 1e6:.2f} M parameters; use it as --model {args.output}")


if __name__ == "__main__":
    main()
