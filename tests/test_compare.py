"""``hl compare``: end to end on a tiny T5 (train, evaluate, skip on rerun), and the table layout."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import hlcli.paper
from conftest import save_tiny_t5
from hlcli.cli import app
from hlcli.compare import (
    CompareResult,
    compare,
    comparison_table,
    config_hash,
    format_count,
    plan,
    read_compare_recipe,
    to_latex,
    to_markdown,
)
from hlcli.config import TrainConfig, load_config
from hlcli.errors import HLError
from hlcli.paper import PublishedColumn

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "recipes" / "smoke.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, t5_tokenizer_path) -> str:
    """A 1-layer random T5 with the real tokenizer (the smoke recipe's backbone)."""
    return save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"), t5_tokenizer_path, num_layers=1)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, tiny_t5, data_dir):
    """``hl compare`` on the smoke recipe, run once for the module: (compare dir, first CLI result, files)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared machine: threads only add contention
    out = tmp_path_factory.mktemp("compare")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HF_HUB_OFFLINE", "1")
            mp.setenv("HL_CACHE_DIR", str(out / "hl-cache"))
            result = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--output", str(out / "table.json"), "--plot", str(out / "fig2.png")))
    finally:
        torch.set_num_threads(threads)
    return out, result


def smoke_args(out: Path, model: str, data_dir: Path, *extra: str) -> list[str]:
    return ["compare", "--recipe", str(SMOKE), "--model", model, "--data-dir", str(data_dir), "--output-dir", str(out / "cmp"), *extra]


def test_compare_trains_both_methods_and_writes_table_json_and_figure(smoke_run):
    out, result = smoke_run
    assert result.exit_code == 0, result.output
    # The table: one column per method with [total/trainable], the two datasets and the Average.
    assert "HyperLoader [" in result.stdout and "HyperFormer++ [" in result.stdout
    for row in ("ATIS", "SNIPS", "Average"):
        assert row in result.stdout
    assert "2 trained, 0 skipped" in result.stdout

    data = json.loads((out / "table.json").read_text())
    assert data["methods"] == ["hyperloader", "hyperformer"] and data["tasks"] == ["atis", "snips"]
    assert {r["method"] for r in data["results"]} == {"hyperloader", "hyperformer"}
    assert len(data["results"]) == 4
    for record in data["results"]:
        assert set(record) == {"method", "model", "fraction", "seed", "task", "f1", "total", "trainable", "run_dir"}
        assert 0.0 <= record["f1"] <= 1.0 and 0 < record["trainable"] < record["total"]
    (table,) = data["tables"]
    assert table["fraction"] == 0.02 and set(table["rows"]) == {"ATIS", "SNIPS", "Average"}
    for method in ("hyperloader", "hyperformer"):
        mean = (table["rows"]["ATIS"][method] + table["rows"]["SNIPS"][method]) / 2
        assert table["rows"]["Average"][method] == pytest.approx(mean)

    long_form = pd.read_csv(out / "cmp" / "results.csv")
    assert list(long_form.columns) == ["method", "model", "fraction", "seed", "task", "f1", "total", "trainable", "run_dir"]
    assert len(long_form) == 4
    assert len(json.loads((out / "cmp" / "results.json").read_text())) == 4

    png = (out / "fig2.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 1000


def test_a_second_compare_skips_the_finished_runs(smoke_run, tiny_t5, data_dir):
    out, first = smoke_run
    assert first.exit_code == 0, first.output
    run_dirs = sorted((out / "cmp" / "runs").iterdir())
    assert len(run_dirs) == 2
    before = {p: p.stat().st_mtime_ns for d in run_dirs for p in d.rglob("*")}

    again = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--output", str(out / "table.md")))
    assert again.exit_code == 0, again.output
    assert "0 trained, 2 skipped" in again.stdout
    assert {p: p.stat().st_mtime_ns for d in run_dirs for p in d.rglob("*")} == before
    # Same numbers as the first time, as Markdown with the best of each row in bold.
    markdown = (out / "table.md").read_text()
    assert "| ATIS |" in markdown and "| Average |" in markdown and "**" in markdown


def test_a_run_trained_but_not_scored_is_only_scored(smoke_run, tiny_t5, data_dir):
    out, _ = smoke_run
    run_dirs = sorted((out / "cmp" / "runs").iterdir())
    (run_dirs[0] / "eval.json").unlink()  # as if compare stopped between training and scoring
    weights = {p: p.stat().st_mtime_ns for p in run_dirs[0].rglob("*.safetensors")}
    result = compare(recipe=SMOKE, model=tiny_t5, data_dir=data_dir, output_dir=out / "cmp")
    assert result.trained == [] and result.evaluated == [run_dirs[0]] and result.skipped == [run_dirs[1]]
    assert {p: p.stat().st_mtime_ns for p in run_dirs[0].rglob("*.safetensors")} == weights
    assert len(result.results) == 4


def test_collect_only_trains_nothing_and_reports_missing_runs(smoke_run, tiny_t5, data_dir):
    out, _ = smoke_run
    result = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--collect-only", "--max-steps", "4"))
    assert result.exit_code == 0, result.output
    assert "0 trained, 0 skipped (finished), 2 missing" in result.stdout
    assert "—" in result.stdout  # the empty cells
    assert len(list((out / "cmp" / "runs").iterdir())) == 2  # no new run folder


def test_paper_at_a_fraction_the_paper_did_not_table_says_so(smoke_run, tiny_t5, data_dir):
    out, _ = smoke_run
    result = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--collect-only", "--paper"))
    assert result.exit_code == 0, result.output
    assert "fractions 0.1, 0.2, 1 only" in result.stderr and "2407.01411" in result.stderr
    assert "(paper)" not in result.stdout


def test_paper_columns_are_rendered_beside_ours(smoke_run, tiny_t5, data_dir, monkeypatch):
    out, _ = smoke_run
    # Test-only values (not the paper's) at the smoke fraction: they check the layout, not the figures.
    column = PublishedColumn("hyperloader", "HyperLoader", "T5", "229M", "6M", False, {"atis": 0.5, "snips": 0.25, "average": 0.9})
    monkeypatch.setattr(hlcli.paper, "TABLES", {0.02: [column]})
    result = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--collect-only", "--paper", "--output", str(out / "paper.md")))
    assert result.exit_code == 0, result.output
    markdown = (out / "paper.md").read_text()
    assert "HyperLoader (T5) [229M/6M] (paper)" in markdown
    # Two of seven datasets: the printed Average (0.9) covers rows not shown, so the mean is recomputed.
    assert "| Average |" in markdown and "**0.3750**" in markdown
    result = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--collect-only", "--paper", "--output", str(out / "paper.json")))
    assert result.exit_code == 0, result.output
    (table,) = json.loads((out / "paper.json").read_text())["tables"]
    assert table["paper"] == {"HyperLoader (T5) [229M/6M] (paper)": {"ATIS": 0.5, "SNIPS": 0.25, "Average": 0.375}}
    assert table["delta_paper"] == {}  # the smoke backbone is no paper backbone: no Δ view


def test_params_prints_the_parameter_table_or_says_it_is_missing(smoke_run, tiny_t5, data_dir):
    out, _ = smoke_run
    result = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--collect-only", "--params"))
    assert result.exit_code == 0, result.output
    if importlib.util.find_spec("hlcli.params") is None:
        assert "hlcli.params" in result.stderr and "not available" in result.stderr
    else:
        assert "Parameters" in result.stdout


def test_unknown_method_exits_2_listing_the_known_ones(tmp_path, tiny_t5, data_dir):
    result = CliRunner().invoke(app, smoke_args(tmp_path, tiny_t5, data_dir, "--methods", "hyperloader,nope"))
    assert result.exit_code == 2
    assert "unknown method 'nope'" in result.stderr and "hyperloader" in result.stderr
    assert not (tmp_path / "cmp").exists()


def test_bad_output_extension_fails_before_training(tmp_path, tiny_t5, data_dir):
    result = CliRunner().invoke(app, smoke_args(tmp_path, tiny_t5, data_dir, "--output", str(tmp_path / "t.docx")))
    assert result.exit_code == 2 and "--format" in result.stderr
    assert not (tmp_path / "cmp").exists()


# -- the table layout, on made-up results (no training) --------------------------------------
def fake_result(unavailable: dict[str, str] | None = None) -> CompareResult:
    rows = [
        ("hyperloader", "atis", 0.91234, 1000, "r1"),
        ("hyperloader", "snips", 0.80000, 1000, "r1"),
        ("lora-only", "atis", 0.95, 900, "r2"),
        ("lora-only", "snips", 0.70, 900, "r2"),
        ("unipelt", "atis", 0.90, 2_500_000, "r3"),
        ("unipelt", "snips", 0.85, 2_500_000, "r4"),
    ]
    frame = pd.DataFrame(
        [
            {"method": m, "model": None, "fraction": 0.1, "seed": None, "task": t, "f1": f, "total": total, "trainable": total // 10, "run_dir": d}
            for m, t, f, total, d in rows
        ]
    )
    methods = ["hyperloader", "lora-only", "unipelt"] + list(unavailable or {})
    return CompareResult(Path("cmp"), "test", methods, [0.1], ["atis", "snips"], frame, unavailable=dict(unavailable or {}))


def test_table_bolds_the_best_of_each_row_with_four_decimals_and_an_average():
    table = comparison_table(fake_result({"hyperdecoder": "n/a (needs decoder)"}), 0.1)
    header, body = table.cells(bold=lambda text: f"<{text}>")
    assert header[0] == "Dataset"
    assert header[1] == "HyperLoader [1.0K/100]"
    # Single-task: one model per dataset, counts summed over the two models, marked with †.
    assert header[3] == "UniPELT† [5.0M/500.0K]"
    assert header[4] == "Hyperdecoder"
    rows = {row[0]: row[1:] for row in body}
    assert rows["ATIS"] == ["0.9123", "<0.9500>", "0.9000", "n/a (needs decoder)"]
    assert rows["SNIPS"] == ["0.8000", "0.7000", "<0.8500>", "n/a (needs decoder)"]
    assert rows["Average"] == ["0.8562", "0.8250", "<0.8750>", "n/a (needs decoder)"]
    assert list(rows) == ["ATIS", "SNIPS", "Average"]


def test_ties_at_four_decimals_are_all_bold():
    result = fake_result()
    result.results.loc[(result.results["method"] == "hyperloader") & (result.results["task"] == "atis"), "f1"] = 0.95001
    header, body = comparison_table(result, 0.1).cells(bold=lambda text: f"<{text}>")
    assert body[0] == ["ATIS", "<0.9500>", "<0.9500>", "0.9000"]


def test_missing_scores_leave_a_dash_and_no_average():
    result = fake_result()
    result.results = result.results[~((result.results["method"] == "lora-only") & (result.results["task"] == "snips"))]
    table = comparison_table(result, 0.1)
    assert math.isnan(table.scores.at["Average", "lora-only"])
    header, body = table.cells()
    rows = {row[0]: row[1:] for row in body}
    assert rows["SNIPS"][1] == "—" and rows["Average"][1] == "—"


def test_markdown_and_latex_renderings():
    table = comparison_table(fake_result({"hyperdecoder": "n/a (needs decoder)"}), 0.1)
    markdown = to_markdown(table)
    assert "| ATIS | 0.9123 | **0.9500** | 0.9000 | n/a (needs decoder) |" in markdown
    assert "10% of the training data" in markdown and "Table 4" in markdown
    latex = to_latex(table)
    assert "\\textbf{0.9500}" in latex and "UniPELT$^\\dagger$" in latex
    assert "\\begin{tabular}{lrrrr}" in latex and latex.count("\\midrule") == 2


@pytest.mark.parametrize("n, text", [(229_640_304, "229.6M"), (6_784_368, "6.8M"), (85_312, "85.3K"), (512, "512")])
def test_format_count(n, text):
    assert format_count(n) == text


# -- recipes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").glob("*.toml")), ids=lambda p: p.name)
def test_every_recipe_reads_and_hl_train_ignores_its_compare_table(recipe):
    settings, section = read_compare_recipe(recipe)
    TrainConfig.from_dict(settings, source=recipe)
    load_config(recipe)  # `hl train --recipe` accepts a recipe with a [compare] table
    if section:
        assert section["methods"]


def test_plan_one_model_per_dataset_for_single_task_methods_and_n_a_for_decoder_methods(tmp_path):
    the_plan = plan(
        recipe=REPO / "recipes" / "smoke.toml",
        methods=["hyperloader", "unipelt", "hyperdecoder"],
        model="minilm",
        output_dir=tmp_path,
    )
    by_method: dict[str, list] = {}
    for run in the_plan.runs:
        by_method.setdefault(run.method, []).append(run)
    assert [r.tasks for r in by_method["hyperloader"]] == [["atis", "snips"]]
    assert [r.tasks for r in by_method["unipelt"]] == [["atis"], ["snips"]]
    assert by_method["hyperdecoder"][0].unavailable == "n/a (needs decoder)"
    # The folder name carries the resolved config's hash: another setting, another run.
    run = by_method["hyperloader"][0]
    assert run.run_dir.name == f"hyperloader-0.02-{config_hash(run.config)}"
    other = plan(recipe=REPO / "recipes" / "smoke.toml", methods=["hyperloader"], model="minilm", output_dir=tmp_path, max_steps=9)
    assert other.runs[0].run_dir != run.run_dir
    assert os.fspath(run.run_dir).startswith(os.fspath(tmp_path))


def test_flags_win_over_the_recipe_and_its_per_method_overrides(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'tasks = ["atis", "snips"]\nmax_steps = 100\nlr = 0.001\n\n[compare]\nmethods = ["hyperloader", "unipelt"]\n'
        "[compare.overrides.unipelt]\nmax_steps = 10\nlr = 0.01\n"
    )
    steps = {r.method: (r.config.max_steps, r.config.lr) for r in plan(recipe=recipe, output_dir=tmp_path).runs}
    assert steps == {"hyperloader": (100, 0.001), "unipelt": (10, 0.01)}
    steps = {r.method: (r.config.max_steps, r.config.lr) for r in plan(recipe=recipe, output_dir=tmp_path, max_steps=3).runs}
    assert steps == {"hyperloader": (3, 0.001), "unipelt": (3, 0.01)}


def test_recipe_errors_name_the_file(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('tasks = ["atis"]\n[compare]\nmethods = ["hyperloader"]\nsplitt = "val"\n')
    with pytest.raises(HLError, match="r.toml: unknown \\[compare\\] setting 'splitt'"):
        plan(recipe=recipe)
    recipe.write_text('tasks = ["atis"]\n[compare]\nmethods = ["hyperloader"]\n[compare.overrides.hyperloader]\nbatchsize = 3\n')
    with pytest.raises(HLError, match="unknown setting 'batchsize'"):
        plan(recipe=recipe)


def test_params_needs_no_recipe():
    result = CliRunner().invoke(app, ["compare", "--params", "--methods", "hyperloader"])
    assert result.exit_code == 0, result.output
    assert "229,640,304" in result.stdout and "6,784,368" in result.stdout


def test_compare_without_recipe_and_without_runs_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compare"])
    assert result.exit_code == 2
    assert "no finished runs under runs" in result.stderr and "--recipe" in result.stderr
