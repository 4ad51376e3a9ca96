"""``hl compare``'s column order is read from the method registry (``hlcli.compare.facts``), not re-listed."""

from __future__ import annotations

from hlcli.compare.facts import method_order


def test_the_columns_follow_the_papers_tables_then_the_ablations_then_the_rest():
    # The paper's Tables 3-4 list HyperLoader, HyperFormer, Hyperdecoder, UniPELT; the ablations follow.
    shuffled = ["zeta", "full-finetune", "static", "lora-only", "unipelt", "hyperdecoder", "hyperformer", "hyperloader"]
    assert method_order(shuffled + ["alpha", "unipelt"]) == [
        "hyperloader", "hyperformer", "hyperdecoder", "unipelt", "lora-only", "static", "full-finetune", "alpha", "zeta",
    ]
    assert method_order([]) == []
