"""``hl evaluate --per-label`` / ``--format``: per-type scores equal seqeval's classification_report,
the conll output is conlleval's input, and the table formats carry the same numbers."""

from __future__ import annotations

import json

import pytest
from seqeval.metrics import classification_report

from _cli import invoke
from conftest import TINY_RUN
from hlcli.scoring import conll_lines, score, score_per_label

pytestmark = pytest.mark.usefixtures("one_thread")

# Lenient chunks on purpose: I-LOC after O opens a LOC chunk, B-PER I-LOC is two chunks (conlleval).
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "I-LOC", "I-LOC", "O"], ["B-ORG", "O", "B-PER", "I-LOC"]]
PRED = [["B-PER", "I-PER", "O", "O"], ["O", "B-LOC", "I-LOC", "O"], ["B-LOC", "O", "B-PER", "B-LOC"]]


def test_per_label_is_seqeval_classification_report():
    report = classification_report(GOLD, PRED, output_dict=True, zero_division=0)
    ours = score_per_label(GOLD, PRED)
    assert sorted(ours) == ["LOC", "ORG", "PER"]
    for label, scores in ours.items():
        assert scores == {
            "precision": report[label]["precision"],
            "recall": report[label]["recall"],
            "f1": report[label]["f1-score"],
            "support": report[label]["support"],
        }
    # Worked by hand: LOC gold chunks {s0 w3, s1 w1-2, s2 w3}, predicted {s1 w1-2, s2 w0, s2 w3} → 2/3, 2/3.
    assert ours["LOC"]["support"] == 3 and ours["LOC"]["precision"] == pytest.approx(2 / 3)
    assert ours["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # The per-type counts add up to the micro scores the table prints.
    support = sum(s["support"] for s in ours.values())
    assert support == 6  # PER, LOC | LOC | ORG, PER, LOC
    assert score(GOLD, PRED)["recall"] == pytest.approx(sum(s["recall"] * s["support"] for s in ours.values()) / support)


def test_per_label_without_any_chunk_is_empty():
    assert score_per_label([["O", "O"]], [["O", "O"]]) == {}
    assert score_per_label([], []) == {}


def test_conll_lines_are_conlleval_input():
    records = [{"tokens": ["Ann", "met", "new\u00a0york"], "gold": ["B-PER", "O", "B-LOC"], "pred": ["B-PER", "O", "O"]},
               {"tokens": ["hi"], "gold": ["O"], "pred": ["O"]}]  # fmt: skip
    text = "".join(conll_lines(records))
    # A token with whitespace inside would shift conlleval's columns: it is joined by '_'.
    assert text == "Ann B-PER B-PER\nmet O O\nnew_york B-LOC O\n\nhi O O\n\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_t5, toy_tasks):
    """A real run (conftest's tiny T5 on the toy corpora). At lr 1e-6 its 2 steps leave the random
    model's guesses: entity tags all over (a run at 3e-3 already tags everything O), so precision,
    recall and F1 differ by type and the checks below compare numbers that are not all zero."""
    folder = tmp_path_factory.mktemp("per-label") / "run"
    result = invoke("train", "--tasks", toy_tasks("flights", "music"), "--model", tiny_t5, *TINY_RUN,
                    "--lr", "1e-6", "--max-steps", 2, "--output-dir", folder)  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder


def _predictions(run, task):
    lines = (run / "predictions" / "test" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_eval_json_always_has_per_label_equal_to_seqeval(run):
    result = invoke("evaluate", run)
    assert result.exit_code == 0, result.output
    assert "per entity type" not in result.stdout  # only with --per-label
    saved = json.loads((run / "eval.json").read_text())["test"]
    for task in ("flights", "music"):
        records = _predictions(run, task)
        report = classification_report([r["gold"] for r in records], [r["pred"] for r in records], output_dict=True, zero_division=0)
        labels = {k: v for k, v in report.items() if not k.endswith(" avg")}
        assert saved["per_label"][task] == {
            k: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"], "support": v["support"]} for k, v in labels.items()
        }
    assert set(saved["per_label"]["music"]) == {"artist", "service"}
    scores = [s[k] for per_type in saved["per_label"].values() for s in per_type.values() for k in ("precision", "recall")]
    assert any(0 < value < 1 for value in scores)  # not a comparison of zeros only


def test_per_label_table_and_markdown(run):
    table = invoke("evaluate", run, "--per-label")
    assert table.exit_code == 0, table.output
    saved = json.loads((run / "eval.json").read_text())["test"]
    artist = saved["per_label"]["music"]["artist"]
    row = [line for line in table.stdout.splitlines() if " artist " in line]
    assert len(row) == 1 and f"{artist['f1']:.4f}" in row[0] and str(artist["support"]) in row[0]
    assert "test F1 per entity type" in table.stdout

    markdown = invoke("evaluate", run, "--per-label", "--format", "markdown")
    assert markdown.exit_code == 0, markdown.output
    lines = markdown.stdout.splitlines()
    assert "| Task | F1 | Precision | Recall | Sentences |" in lines
    assert "| Task | Type | F1 | Precision | Recall | Support |" in lines
    s = artist
    assert f"| music | artist | {s['f1']:.4f} | {s['precision']:.4f} | {s['recall']:.4f} | {s['support']} |" in lines
    assert not any(ch in markdown.stdout for ch in "┏━│")  # no box drawing in Markdown


def test_format_json_is_the_eval_json_record(run):
    result = invoke("evaluate", run, "--format", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert printed == json.loads((run / "eval.json").read_text())["test"]
    assert set(printed["per_label"]) == {"flights", "music"}


def test_format_conll_is_the_predictions_in_conlleval_input(run, tmp_path):
    result = invoke("evaluate", run, "--tasks", "music", "--format", "conll")
    assert result.exit_code == 0, result.output
    records = _predictions(run, "music")
    blocks = result.stdout.split("\n\n")
    assert blocks[-1] == "" and len(blocks) - 1 == len(records)
    for block, record in zip(blocks, records):
        rows = [line.split(" ") for line in block.split("\n")]
        assert rows == [[t, g, p] for t, g, p in zip(record["tokens"], record["gold"], record["pred"])]

    refused = invoke("evaluate", run, "--format", "conll")
    assert refused.exit_code == 2 and "--format conll needs one task" in refused.stderr
    refused = invoke("evaluate", run, "--format", "html")
    assert refused.exit_code == 2 and "table | markdown | json | conll" in refused.stderr
