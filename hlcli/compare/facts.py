"""What the comparison needs to know about each method, read from the method registry.

Every fact (single-task, needs a decoder, column name) is stated once, in the method's
``register_method`` call (:class:`hlcli.methods.MethodEntry`); this module only reads them, and
fixes the paper's column order.
"""

from __future__ import annotations

from hlcli.methods import known_methods, method_entry

SINGLE_TASK_MARK = "†"
# The tables' column order: the paper's methods as its Tables 3-4 list them, then the ablations.
COLUMN_ORDER = ("hyperloader", "hyperformer", "hyperdecoder", "unipelt", "lora-only", "static", "full-finetune")


def is_single_task(method: str) -> bool:
    return method in known_methods() and method_entry(method).single_task


def needs_decoder(method: str) -> bool:
    return method in known_methods() and method_entry(method).needs_decoder


def display_name(method: str) -> str:
    return method_entry(method).display_name if method in known_methods() else method


def method_order(methods) -> list[str]:
    """Methods in the tables' column order (known ones first, then the rest alphabetically)."""
    return sorted(set(methods), key=lambda m: (COLUMN_ORDER.index(m) if m in COLUMN_ORDER else len(COLUMN_ORDER), m))
