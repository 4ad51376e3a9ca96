"""experiments/leave_one_out.py plans the study of issue 13 as documented (``--dry-run``: no training)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_study_plans_every_variant_at_the_new_tasks_step_count(tmp_path, data_dir):
    work = tmp_path / "loo"
    out = subprocess.run(
        [sys.executable, "-m", "experiments.leave_one_out", "--dry-run", "--data-dir", str(data_dir),
         "--work-dir", str(work), "--base-steps", "1000", "--embedding-lr", "1e-2,1e-4"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout
    commands = [line[2:] for line in out.splitlines() if line.startswith("$ hl ")]
    trains = [c for c in commands if c.startswith("hl train")]
    adapts = [c for c in commands if c.startswith("hl adapt")]
    steps = {m.group(1): int(m.group(2)) for m in re.finditer(r"# (\w+): .*?gives \w+ ~(\d+) steps", out)}
    assert set(steps) == {"atis", "restaurant"} and all(100 < n < 250 for n in steps.values())
    # Per held-out task: 2 inits x 2 lrs frozen, tuned, tuned + replay.
    assert len(adapts) == 2 * 6
    for task, n in steps.items():
        mine = [c for c in adapts if f"--tasks {task} " in c]
        assert sum(f"--max-steps {n} " in c for c in mine) == 5  # (a) x 4 and (b): the new task's share
        assert sum("--replay" in c and "--max-steps 1167 " in c for c in mine) == 1
        assert any(f"--tasks {task} --max-steps {n} " in c for c in trains)  # (d) alone
    # (c) is one seven-task run shared by both held-out tasks (dry-run prints it for each).
    joint = {re.search(r"--output-dir (\S+)", c).group(1) for c in trains if "--max-steps 1167 " in c}
    assert joint == {str(work / "joint-atis-movie-movietrivia-mtod-mtop-restaurant-snips")}
    assert not work.exists()  # a dry run writes nothing
