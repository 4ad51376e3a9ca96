"""``hl train``'s final summary names the checkpoint ``hl evaluate`` will score (``select_checkpoint``)."""

from __future__ import annotations

import re

import pytest

from _cli import invoke

pytestmark = pytest.mark.usefixtures("one_thread")

SUMMARY = re.compile(r"trained (\d+) steps; best val_loss (\d+\.\d{4}) at step (\d+); hl evaluate scores (.*)")


def _summary(output: str) -> re.Match:
    found = [m for m in map(SUMMARY.fullmatch, output.splitlines()) if m]
    assert len(found) == 1, output
    return found[0]


def test_summary_names_the_last_checkpoint_when_the_run_scores_the_last_one(tmp_path, tiny_run, toy_tasks):
    run = tmp_path / "run"
    # Validations at steps 2 and 4: a best step exists, but the last checkpoint is what is scored.
    result = invoke("train", "--tasks", toy_tasks("flights"), *tiny_run, "--max-steps", 4, "--select-checkpoint", "last",
                    "--output-dir", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    line = _summary(result.stdout)
    assert line.group(1) == "4" and line.group(3) in ("2", "4")
    assert line.group(4) == 'checkpoints/last (step 4, select_checkpoint = "last")'


def test_summary_names_the_best_checkpoint_by_default(tmp_path, tiny_run, toy_tasks):
    run = tmp_path / "run"
    result = invoke("train", "--tasks", toy_tasks("flights"), *tiny_run, "--max-steps", 2, "--output-dir", run)
    assert result.exit_code == 0, result.output
    line = _summary(result.stdout)
    assert line.group(4) == f'checkpoints/best (step {line.group(3)}, select_checkpoint = "best")'
