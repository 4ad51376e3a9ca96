"""What the comparison needs to know about each method, in one place.

These facts move into the method registry (``hlcli.methods.MethodEntry``); until then this is
the only module of the comparison that states them, so switching is one edit here.
"""

from __future__ import annotations

# Methods that train one model per dataset (the paper's single-task baselines).
SINGLE_TASK_METHODS = frozenset({"unipelt"})
# Methods that adapt a decoder: they cannot run on an encoder-only backbone such as MiniLM.
DECODER_METHODS = frozenset({"hyperdecoder"})
# Column names as printed in the paper, in the order the tables list them.
DISPLAY_NAMES = {
    "hyperloader": "HyperLoader",
    "hyperformer": "HyperFormer++",
    "hyperdecoder": "Hyperdecoder",
    "unipelt": "UniPELT",
    "lora-only": "LoRA",
    "static": "Static",
    "full-finetune": "Fine-tuning",
}
SINGLE_TASK_MARK = "†"


def is_single_task(method: str) -> bool:
    return method in SINGLE_TASK_METHODS


def needs_decoder(method: str) -> bool:
    return method in DECODER_METHODS


def display_name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


def method_order(methods) -> list[str]:
    """Methods in the tables' column order (known ones first, then the rest alphabetically)."""
    known = list(DISPLAY_NAMES)
    return sorted(set(methods), key=lambda m: (known.index(m) if m in known else len(known), m))
