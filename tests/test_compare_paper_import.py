"""``hl compare --paper`` only prints bundled tables: it must not pay for importing torch (~2 s
alone, ~10 s on a loaded machine). Checked in a fresh interpreter, where nothing is imported yet."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = """
import sys
from typer.testing import CliRunner
from hlcli.cli import app
result = CliRunner().invoke(app, ["compare", "--paper"])
assert result.exit_code == 0, result.output
assert "HyperLoader" in result.output and "Average" in result.output, result.output
import hlcli.compare, hlcli.methods
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


def test_compare_paper_and_the_registry_facts_import_no_torch(tmp_path):
    env = {**os.environ, "COLUMNS": "250"}  # the tables' row labels fit
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_registry_still_hands_out_taskspec_lazily():
    import hlcli.methods
    from hlcli.methods.base import TaskSpec

    assert hlcli.methods.TaskSpec is TaskSpec
