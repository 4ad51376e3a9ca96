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


def test_the_column_order_does_not_depend_on_which_method_registered_first():
    # A fresh process that imports two ablations' packages before anything reads the registry: the
    # order stays the built-in tuple's (it once followed registration order).
    import subprocess
    import sys

    code = ("import hlcli.methods.full_finetune, hlcli.methods.unipelt\n"
            "from hlcli.methods import registered_methods\nprint(','.join(registered_methods()))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["hyperloader,hyperformer,hyperdecoder,unipelt,lora-only,static,full-finetune"]
