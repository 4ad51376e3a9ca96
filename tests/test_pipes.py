"""Output that survives pipes and files: complete tables off a terminal, --format markdown/json,
and a reader that leaves early (``| head -1``) ends hl quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from _cli import invoke

pytestmark = pytest.mark.usefixtures("one_thread")

# The datasets of the paper's Tables 3 and 4, as hl compare titles them.
DATASETS = ["MovieTrivia", "Movie", "Restaurant", "ATIS", "SNIPS", "mTOP", "mTOD"]


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1] in "┏┃┡│├└"]


def test_compare_paper_piped_has_every_column_and_dataset():
    # CliRunner's stdout is not a terminal, as in `hl compare --paper | cat`; COLUMNS=80 is what a
    # terminal beside the pipe (stderr) made rich assume before.
    result = invoke("compare", "--paper", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = _table_lines(result.stdout)
    for name in DATASETS:
        assert any(line.startswith(f"│ {name} ") for line in lines), name
    assert "0.8811" in result.stdout  # HyperLoader's Table 3 average, in the right-most half
    assert "Hyperdecoder (T5) [239M/16M]" in result.stdout
    # No row cut short: every line of a table closes with its right border.
    assert lines and all(line.rstrip()[-1] in "┓┃┩│┤┘" for line in lines)
    assert max(len(line) for line in lines) > 80


def test_compare_params_piped_is_not_cut_at_80_columns():
    result = invoke("compare", "--params", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = _table_lines(result.stdout)
    header = next(line for line in lines if line.startswith("┃"))
    assert "paper trainable" in header and header.rstrip().endswith("┃")
    assert "229,640,304" in result.stdout  # HyperLoader on T5-base, the paper's count
    assert max(len(line) for line in lines) > 80 and all(line.rstrip()[-1] in "┓┃┩│┤┘" for line in lines)


def test_an_exported_columns_does_not_cut_a_piped_table():
    # A real process, COLUMNS in its environment from the start (as `export COLUMNS` in a shell, or
    # pytest-xdist's workers): rich takes it as a fixed width when the console is built, which cut
    # the piped table at 80 columns; it must size a terminal only.
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "hlcli", "compare", "--params"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    header = next(line for line in _table_lines(done.stdout) if line.startswith("┃"))
    assert "paper trainable" in header and len(header) > 80


def test_evaluate_title_and_paths_are_never_wrapped(tmp_path, tiny_run, toy_tasks):
    run = tmp_path / ("a-long-run-folder-name-" * 5 + "end")  # the checkpoint path is > 150 characters
    result = invoke("train", "--tasks", toy_tasks("flights"), *tiny_run, "--max-steps", 2, "--output-dir", run)
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", run, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].rstrip() == "test F1"
    checkpoint = str(run / "checkpoints" / "best")
    assert len(checkpoint) > 150 and any(line.startswith(f"checkpoint: {checkpoint}") for line in lines)
    assert f"predictions: {run / 'predictions' / 'test'}" in lines


def test_data_stats_markdown_and_json(data_dir):
    result = invoke("data", "stats", "--data-dir", data_dir, "--tasks", "atis,movie", "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:4] == ["**Corpora (Table 2)**", "", "| corpus | train | val | test | labels | adjacent |",
                         "| :--- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    assert lines[4].startswith("| ATIS | 4,478 | 500 | 893 |")
    assert lines[5].startswith("| Movie | 8,798\\* | 977 | 2,443 |")  # '*' escaped: it marks the held-out val
    as_json = invoke("data", "stats", "--data-dir", data_dir, "--tasks", "atis", "--format", "json")
    assert json.loads(as_json.stdout)[0]["train"] == 4478
    refused = invoke("data", "stats", "--data-dir", data_dir, "--format", "html")
    assert refused.exit_code == 2 and "table | markdown | json" in refused.stderr


def _hl(*args: str) -> list[str]:
    return [sys.executable, "-m", "hlcli", *args]


def test_head_1_ends_hl_quietly():
    """``hl compare --paper | head -1`` through a real shell pipe: one line out, nothing on stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = " ".join(_hl("compare", "--paper")) + ' 2>"$ERR" | head -1; echo "hl exit ${PIPESTATUS[0]}"'
    err = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"hl-pipe-{os.getpid()}.err")
    try:
        done = subprocess.run(["bash", "-c", command], env={**env, "ERR": err}, capture_output=True, text=True, timeout=120)
        with open(err, encoding="utf-8") as handle:
            stderr = handle.read()
    finally:
        if os.path.exists(err):
            os.remove(err)
    first, status = done.stdout.splitlines()
    assert first.startswith("The paper's Table 3 as published")
    # 0 when hl wrote everything before head left, 1 (the documented closed-pipe exit) otherwise.
    assert status in ("hl exit 0", "hl exit 1") and stderr == ""


def test_closed_stdout_exits_1_without_a_message(data_dir):
    """A reader gone before hl writes anything: the closed-pipe exit (1), no traceback, no message.

    Both ways hl writes: a rich table (compare) and plain text (data stats --format json).
    """
    stats = ("data", "stats", "--data-dir", str(data_dir), "--tasks", "atis", "--format", "json")
    for args in (("compare", "--paper"), stats):
        process = subprocess.Popen(_hl(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
        process.stdout.close()  # before the interpreter has even started: every write fails
        stderr = process.stderr.read()
        assert process.wait(timeout=120) == 1, args
        assert stderr == b"", (args, stderr)


def test_compare_format_without_output_prints_only_that_format_on_stdout():
    # `hl compare --paper --format json | jq`: stdout is the JSON document and nothing else.
    result = invoke("compare", "--paper", "--format", "json")
    assert result.exit_code == 0, result.output
    tables = json.loads(result.stdout)["tables"]
    assert [t["fraction"] for t in tables] == [1.0, 0.1, 0.2]
    assert tables[1]["paper"]["HyperLoader (T5) [229M/6M]"]["Average"] == 0.8331  # Table 4, 10 %

    result = invoke("compare", "--paper", "--format", "markdown")
    assert result.exit_code == 0 and result.stdout.startswith("**The paper's Table 3 as published")
    assert "┃" not in result.stdout  # no rich table beside it


def test_compare_csv_has_a_row_per_published_cell_with_the_best_recomputed():
    import io

    import pandas as pd

    result = invoke("compare", "--paper", "--format", "csv")
    assert result.exit_code == 0, result.output
    cells = pd.read_csv(io.StringIO(result.stdout))
    assert len(cells) == 3 * 8 * 5 and set(cells["source"]) == {"paper"}  # tables x (7 datasets + Average) x columns
    hyperloader = cells[(cells["fraction"] == 0.1) & (cells["method"] == "paper:hyperloader")]
    assert dict(zip(hyperloader["dataset"], hyperloader["f1"]))["mTOP"] == 0.8114
    for _, row in cells.groupby(["fraction", "dataset"]):
        assert set(row.loc[row["best"], "f1"]) == {row["f1"].max()}


def test_compare_params_format_prints_the_counts_for_scripts():
    result = invoke("compare", "--params", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {(r["method"], r["backbone"]): r for r in json.loads(result.stdout)}
    assert rows[("hyperloader", "t5-base")]["total"] == 229_640_304  # the paper's count, as in the table
    assert rows[("full-finetune", "t5-base")]["paper total"] is None  # no published figure: null, not NaN
    csv = invoke("compare", "--params", "--format", "csv")
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("method,backbone,total,trainable")
    assert len(csv.stdout.splitlines()) == len(rows) + 1
    refused = invoke("compare", "--params", "--format", "latex")
    assert refused.exit_code == 2 and "csv, json or markdown" in refused.output
    both = invoke("compare", "--params", "--paper", "--format", "json")  # two documents on one stdout: refused
    assert both.exit_code == 2 and not both.stdout
