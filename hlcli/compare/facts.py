"""What the comparison needs to know about each method, read from the method registry.

Every fact (single-task, needs a decoder, column name) is stated once, in the method's
``register_method`` call (:class:`hlcli.methods.MethodEntry`); this module only reads them. The
tables' column order is the registry's order (the paper's methods as its Tables 3-4 list them, then
the ablations: :data:`hlcli.methods.BUILTIN_METHOD_MODULES`).
"""

from __future__ import annotations

from hlcli.methods import known_methods, method_entry, registered_methods

SINGLE_TASK_MARK = "†"


def is_single_task(method: str) -> bool:
    return method in known_methods() and method_entry(method).single_task


def needs_decoder(method: str) -> bool:
    return method in known_methods() and method_entry(method).needs_decoder


def display_name(method: str) -> str:
    return method_entry(method).display_name if method in known_methods() else method


def method_order(methods) -> list[str]:
    """Methods in the tables' column order (registered ones in registration order, then the rest
    alphabetically)."""
    methods = set(methods)
    if not methods:  # nothing to order (hl compare --paper alone): no registry load, so no torch
        return []
    order = registered_methods()
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))
