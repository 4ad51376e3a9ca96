"""The parameter-count table: exact HyperLoader / HyperFormer++ counts, a row for every method."""

from __future__ import annotations

import pytest

from hlcli.errors import UsageError
from hlcli.methods import known_methods
from hlcli.compare.param_counts import COLUMNS, parameter_table


@pytest.fixture(scope="module")
def table():
    return parameter_table()


def _row(table, method: str, backbone: str):
    rows = table[(table.method == method) & (table.backbone == backbone)]
    assert len(rows) == 1, (method, backbone)
    return rows.iloc[0]


def test_columns(table):
    assert list(table.columns) == COLUMNS


@pytest.mark.parametrize(
    "method, total, trainable",
    [("hyperloader", 229_640_304, 6_784_368), ("hyperformer", 228_066_928, 5_210_992)],
)
def test_exact_paper_counts_on_t5_base(table, method, total, trainable):
    row = _row(table, method, "t5-base")
    assert (row.total, row.trainable) == (total, trainable)
    assert row["paper total"] == f"{total:,}" and row["paper trainable"] == f"{trainable:,}"


def test_every_method_has_a_row(table):
    assert set(table.method) == set(known_methods())
    for method in known_methods():
        _row(table, method, "t5-base")
        if method != "hyperdecoder":
            _row(table, method, "bert-base")
    assert not ((table.method == "hyperdecoder") & (table.backbone == "bert-base")).any()


def test_counts_near_the_paper_brackets(table):
    hyperdecoder = _row(table, "hyperdecoder", "t5-base")
    assert 14_500_000 < hyperdecoder.trainable < 16_500_000  # paper: 16M (its code also counts unused adapters)
    assert 4_400_000 < _row(table, "unipelt", "t5-base").trainable < 4_600_000  # paper: 4.5M
    full = _row(table, "full-finetune", "t5-base")
    assert full.total == full.trainable == 222_903_552
    assert _row(table, "full-finetune", "bert-base")["% trainable"] == 100.0


def test_methods_and_backbones_filter():
    table = parameter_table(methods=["static"], backbones=["t5-base"])
    assert table[["method", "backbone"]].values.tolist() == [["static", "t5-base"]]
    with pytest.raises(UsageError):
        parameter_table(methods=["static"], backbones=["gpt2"])
