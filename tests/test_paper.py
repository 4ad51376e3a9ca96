"""Every figure bundled in hlcli/compare/paper.py against the transcription in ../shared/paper (never copied here)."""

from __future__ import annotations

import csv

import pytest

from conftest import SHARED
from hlcli.compare import paper

RESULTS = SHARED / "paper" / "hyperloader_2024_results.csv"
RELEASED = SHARED / "paper" / "authors_released_runs.csv"


def _rows(path):
    if not path.is_file():
        pytest.fail(f"{path} is missing: the tests read the paper's figures from ../shared (set HL_SHARED)")
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_published_f1_count_and_mark_matches_the_csv():
    rows = _rows(RESULTS)
    bundled = {(c.method, fraction): c for fraction, columns in paper.TABLES.items() for c in columns}
    seen = set()
    for row in rows:
        column = bundled[row["method"], float(row["fraction"])]
        assert column.f1[row["dataset"]] == float(row["micro_f1"]), row
        assert (column.label, column.backbone, column.total, column.trainable) == (
            row["paper_name"], row["backbone"], row["params_total"], row["params_trainable"]
        ), row
        assert column.single_task == (row["single_task"] == "True"), row
        assert paper.TABLE_FOR_FRACTION[float(row["fraction"])] == row["table"].replace("table", "Table "), row
        seen.add((row["method"], float(row["fraction"]), row["dataset"]))
    # Nothing bundled beyond the CSV: every bundled value was checked above.
    assert {(c.method, f, d) for (_, f), c in bundled.items() for d in c.f1} == seen
    assert len(seen) == 120


def test_the_authors_released_runs_match_the_csv_at_full_precision():
    rows = _rows(RELEASED)
    for row in rows:
        assert row["method"] == "hyperloader"
        assert paper.RELEASED_RUNS[float(row["fraction"])][row["dataset"]] == float(row["micro_f1"]), row
    assert sum(len(v) for v in paper.RELEASED_RUNS.values()) == len(rows) == 21


def test_released_runs_round_to_table_4s_hyperloader_column():
    for fraction in (0.1, 0.2):
        column = paper.paper_column("hyperloader", "t5-base", fraction)
        for task, f1 in paper.RELEASED_RUNS[fraction].items():
            assert round(f1, 4) == column.f1[task]


def test_paper_column_maps_unipelt_by_backbone_and_nothing_off_the_papers_backbones():
    assert paper.paper_column("unipelt", "t5-base", 1.0).method == "unipelt-t5"
    assert paper.paper_column("unipelt", "bert-base-uncased", 0.1).method == "unipelt-bert"
    assert paper.paper_column("hyperloader", "minilm", 0.1) is None
    assert paper.paper_column("lora-only", "t5-base", 0.1) is None
    assert paper.paper_column("hyperloader", "t5-base", 0.5) is None  # no published table at 50 %
