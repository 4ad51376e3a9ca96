"""``hl compare --dry-run``'s time left: each method's pace read from its runs' ``train.log``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from hlcli.compare.pace import Spent, measured_pace, pace_report, spent_text, stretches, time_spent

LOG = """\
2026-12-03 10:50:48 torch 2.13.0+cpu on cpu, 1 CPU threads
2026-12-03 10:51:02 estimate: ≈ 53 min 32 s for the remaining 4,979 of 5,000 steps
2026-12-03 10:51:22 step 50 loss 3.3907 lr 1.500e-05
2026-12-03 10:51:57 step 100 loss 2.1000 lr 3.000e-05
2026-12-03 10:52:02 eval step 100: val_loss 1.2000 (best)
2026-12-03 10:52:37 step 150 loss 1.0000 lr 3.000e-05
2026-12-03 13:00:00 torch 2.13.0+cpu on cpu, 1 CPU threads
2026-12-03 13:00:35 step 150 loss 1.0000 lr 3.000e-05
2026-12-03 13:01:10 step 200 loss 0.9000 lr 3.000e-05
2026-12-03 13:31:10 step 250 loss 0.8000 lr 3.000e-05
2026-12-03 13:31:45 step 300 loss 0.7000 lr 3.000e-05
"""


def write_log(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "train.log").write_text(text, encoding="utf-8")
    return folder


def test_stretches_follow_the_step_lines_and_start_over_where_a_resume_goes_back(tmp_path):
    run = write_log(tmp_path / "run", LOG)
    # 50→100 (35 s), 100→150 (40 s: the validation between them counts), the resume at 150 (same
    # step: no stretch across the two sessions), 150→200, 200→250 (a 30-min pause), 250→300.
    assert stretches(run / "train.log") == [(35.0, 50), (40.0, 50), (35.0, 50), (1800.0, 50), (35.0, 50)]
    assert stretches(tmp_path / "missing" / "train.log") == []


def test_the_pace_leaves_pauses_out_and_pools_the_runs_of_a_method(tmp_path):
    run = write_log(tmp_path / "run", LOG)
    pace = measured_pace([run])
    assert pace is not None and pace.steps == 200  # the 1,800 s stretch is a pause (> 5 x the median)
    assert pace.seconds_per_step == pytest.approx((35 + 40 + 35 + 35) / 200)
    other = write_log(tmp_path / "other", "2026-12-04 09:00:00 step 10 loss 1\n2026-12-04 09:00:55 step 60 loss 1\n")
    pooled = measured_pace([run, other, tmp_path / "not-yet"])
    assert pooled is not None and pooled.seconds_per_step == pytest.approx((145 + 55) / 250)
    assert measured_pace([tmp_path / "not-yet"]) is None


def test_the_report_turns_steps_left_into_time_per_method_and_in_all(tmp_path):
    run = write_log(tmp_path / "run", LOG)

    def status(method: str, run_dir: Path | None, left: int) -> SimpleNamespace:
        return SimpleNamespace(run=SimpleNamespace(method=method, run_dir=run_dir), steps_left=left)

    lines = pace_report([
        status("hyperloader", run, 0), status("hyperloader", run, 0),  # a grid point, and the final run it is
        status("hyperloader", tmp_path / "next", 4000),
        status("unipelt", None, 1000), status("hyperformer", run, 0),
    ])
    assert lines[1] == "  hyperloader: 4,000 steps × 0.725 s ≈ 48 min 20 s (measured over 200 steps)"
    assert lines[2] == "  unipelt: 1,000 steps, pace not measured yet"
    assert "hyperformer" not in "".join(lines[:4])  # nothing left to train
    assert lines[3].startswith("  in all ≈ 48 min 20 s + the methods not measured yet")
    # Last, what was trained so far at the same pace: the measured run (listed for two methods) reached step 300.
    assert lines[4] == (
        "Trained so far, at the same pace: hyperloader ≈ 3 min 38 s (300 steps, 1 run); "
        "hyperformer ≈ 3 min 38 s (300 steps, 1 run); in all ≈ 7 min 15 s"
    )
    assert pace_report([status("hyperloader", run, 0)]) == [  # nothing left: only what was trained
        "Trained so far, at the same pace: hyperloader ≈ 3 min 38 s (300 steps, 1 run); in all ≈ 3 min 38 s"
    ]
    assert pace_report([status("hyperloader", tmp_path / "next", 0)]) == []


def test_time_spent_is_the_steps_reached_at_the_measured_pace(tmp_path):
    run = write_log(tmp_path / "run", LOG)  # reached step 300 at 0.725 s a step (the pause left out)
    other = write_log(tmp_path / "other", "2026-12-04 09:00:00 step 10 loss 1\n2026-12-04 09:00:55 step 60 loss 1\n")
    spent = time_spent({
        "hyperloader": [run, run, tmp_path / "not-yet"],  # a chosen grid point is also its seed's final run
        "unipelt": [run, other],
        "hyperformer": [tmp_path / "not-yet"],  # nothing trained: left out
    })
    assert spent == {
        "hyperloader": Spent(300 * 0.725, 300, 1),
        "unipelt": Spent(360 * (145 + 55) / 250, 360, 2),
    }
    assert spent_text(spent, str.upper) == (
        "HYPERLOADER ≈ 3 min 38 s (300 steps, 1 run); UNIPELT ≈ 4 min 48 s (360 steps, 2 runs); in all ≈ 8 min 26 s"
    )
