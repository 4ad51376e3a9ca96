"""``hl compare``: end to end on a tiny T5 (train, evaluate, skip on rerun), and the table layout."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import hlcli.compare.paper
from conftest import save_tiny_t5
from hlcli.cli import app
from hlcli.compare import (
    CompareResult,
    compare,
    comparison_table,
    config_hash,
    footnotes,
    format_count,
    plan,
    read_compare_recipe,
    to_latex,
    to_markdown,
)
from hlcli.config import TrainConfig, load_config
from hlcli.errors import HLError
from hlcli.compare.paper import PublishedColumn

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
    monkeypatch.setattr(hlcli.compare.paper, "TABLES", {0.02: [column]})
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


def test_params_after_a_recipe_prints_the_parameter_table_of_its_methods(smoke_run, tiny_t5, data_dir):
    out, _ = smoke_run
    result = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--collect-only", "--params"))
    assert result.exit_code == 0, result.output
    assert "Parameters for the seven tasks (ours beside the papers')" in result.stdout
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines() if line.startswith("│")]
    methods = {row[0] for row in cells if len(row) > 1 and row[1] in ("t5-base", "bert-base")}
    assert methods == {"hyperloader", "hyperformer"}  # the smoke recipe's methods, no others
    # T5-base counts equal to the authors' (README, "hl compare --params"): total, trainable.
    assert "229,640,304" in result.stdout and "6,784,368" in result.stdout  # HyperLoader
    assert "228,066,928" in result.stdout and "5,210,992" in result.stdout  # HyperFormer++


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


def test_a_table_with_uneven_seeds_says_so(tmp_path):
    # A comparison still running: HyperLoader has two seeds, lora-only one, and UniPELT's SNIPS
    # model a second seed its ATIS model does not have yet.
    result = fake_result()
    extra = result.results[result.results["method"].isin(["hyperloader", "unipelt"])].copy()
    extra = extra[(extra["method"] == "hyperloader") | (extra["task"] == "snips")].assign(seed=7)
    result.results = pd.concat([result.results, extra], ignore_index=True)
    (table,) = result.tables()
    assert table.seed_range == {"hyperloader": (2, 2), "lora-only": (1, 1), "unipelt": (1, 2)}
    note = "Seeds per dataset are not the same for every method (a comparison still running?): "
    assert note + "HyperLoader 2, LoRA 1, UniPELT 1–2; each cell averages the seeds it has." in footnotes(
        result, [table]
    )
    # The same number of seeds everywhere: no such note.
    assert not any("Seeds per dataset" in line for line in footnotes(fake_result(), fake_result().tables()))


def test_figure2_marks_the_mean_over_seeds_with_a_bar_of_their_spread(tmp_path):
    from hlcli.compare.plot import _point, plot_figure2

    result = fake_result()
    # A second HyperLoader seed: its Average 0.8 (ATIS 0.9, SNIPS 0.7) against the first's 0.85617.
    second = pd.DataFrame([
        {**result.results.iloc[i].to_dict(), "seed": 7, "f1": f1} for i, f1 in ((0, 0.9), (1, 0.7))
    ])
    result.results = pd.concat([result.results, second], ignore_index=True)
    share, average, spread = _point(result, "hyperloader", 0.1)
    assert share == pytest.approx(10.0) and average == pytest.approx((0.85617 + 0.8) / 2)
    assert spread == pytest.approx(pd.Series([0.85617, 0.8]).std(ddof=1))
    assert _point(result, "lora-only", 0.1)[2] is None  # one seed: no bar
    plot_figure2(result, tmp_path / "fig2.png")
    assert (tmp_path / "fig2.png").read_bytes().startswith(b"\x89PNG")


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


# -- seeds, intervals and ties, end to end on the smoke recipe --------------------------------
@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory, tiny_t5, data_dir):
    """``hl compare --seeds 1,2`` on the smoke recipe, once for the module: (folder, CLI result)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("seeded")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HF_HUB_OFFLINE", "1")
            mp.setenv("HL_CACHE_DIR", str(out / "hl-cache"))
            result = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--seeds", "1,2", "--output", str(out / "table.md")))
    finally:
        torch.set_num_threads(threads)
    return out, result


def test_seeds_repeat_every_run_and_cells_show_mean_and_std(seeded_run, tiny_t5, data_dir):
    out, result = seeded_run
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "cmp" / "runs").iterdir())
    assert [n.rsplit("-", 1)[0] for n in names] == [
        "hyperformer-0.02-seed1", "hyperformer-0.02-seed2", "hyperloader-0.02-seed1", "hyperloader-0.02-seed2"
    ]
    assert "4 trained, 0 skipped" in result.stdout and "±" in result.stdout
    again = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--seeds", "1,2", "--collect-only", "--output", str(out / "t.json")))
    assert again.exit_code == 0 and "0 trained, 4 skipped" in again.stdout
    (table,) = json.loads((out / "t.json").read_text())["tables"]
    assert table["seeds"] == {"hyperloader": 2, "hyperformer": 2}
    long_form = pd.read_csv(out / "cmp" / "results.csv")
    for method in ("hyperloader", "hyperformer"):
        per_seed = long_form[long_form["method"] == method].pivot(index="task", columns="seed", values="f1")
        assert table["rows"]["ATIS"][method] == pytest.approx(per_seed.loc["atis"].mean())
        assert table["std"]["ATIS"][method] == pytest.approx(per_seed.loc["atis"].std(ddof=1))
        averages = per_seed.mean(axis=0)
        assert table["rows"]["Average"][method] == pytest.approx(averages.mean())


def test_every_cell_has_an_interval_and_the_tie_marks_follow_the_p_values(seeded_run, tiny_t5, data_dir):
    out, result = seeded_run
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--seeds", "1,2", "--collect-only", "--output", str(out / "t2.json")))
    assert again.exit_code == 0, again.output
    (table,) = json.loads((out / "t2.json").read_text())["tables"]
    markdown = (out / "table.md").read_text()
    assert "≈ not significantly worse than the row's best" in markdown
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines() if line.startswith("| ")}
    for row, values in table["rows"].items():
        for method, mean in values.items():
            low, high = table["ci95_low"][row][method], table["ci95_high"][row][method]
            assert low is not None and low <= high
            p = table["p_vs_best"][row][method]
            if method in table["best"][row]:
                continue
            assert p is not None and 0.0 <= p <= 1.0
            tied = method in table["tied_with_best"][row]
            assert tied == (p >= 0.05)
            assert (f"{mean:.4f} ± {table['std'][row][method]:.4f}≈" in rows[row]) == tied
    csv = out / "cells.csv"
    assert CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--seeds", "1,2", "--collect-only", "--output", str(csv))).exit_code == 0
    cells = pd.read_csv(csv)
    assert {"ci95_low", "ci95_high", "p_vs_best", "tied_with_best", "std", "seeds"} <= set(cells.columns)
    assert len(cells) == 6 and cells["ci95_low"].notna().all()


def test_compare_without_a_recipe_tables_the_runs_of_a_folder(seeded_run, tiny_t5, data_dir, tmp_path):
    out, _ = seeded_run
    result = CliRunner().invoke(app, ["compare", "--runs-dir", str(out / "cmp" / "runs"), "--split", "val", "--output", str(tmp_path / "found.json")])
    assert result.exit_code == 0, result.output
    (table,) = json.loads((tmp_path / "found.json").read_text())["tables"]
    assert table["fraction"] == 0.02 and table["seeds"] == {"hyperloader": 2, "hyperformer": 2}
    assert set(table["rows"]) == {"ATIS", "SNIPS", "Average"}
    # The same runs tabled from the recipe (nothing trained): the same cells.
    from_recipe = CliRunner().invoke(app, smoke_args(out, tiny_t5, data_dir, "--seeds", "1,2", "--collect-only", "--output", str(tmp_path / "recipe.json")))
    assert from_recipe.exit_code == 0 and "0 trained, 4 skipped" in from_recipe.stdout, from_recipe.output
    (recipe_table,) = json.loads((tmp_path / "recipe.json").read_text())["tables"]
    for key in ("rows", "std", "ci95_low", "ci95_high", "seeds"):
        assert table[key] == recipe_table[key], key


def test_evaluate_ci_writes_an_interval_around_each_f1(seeded_run):
    out, _ = seeded_run
    run_dir = sorted((out / "cmp" / "runs").iterdir())[0]
    result = CliRunner().invoke(app, ["evaluate", str(run_dir), "--split", "val", "--ci"])
    assert result.exit_code == 0, result.output
    assert "95% CI of F1" in result.stdout
    scores = json.loads((run_dir / "eval.json").read_text())["val"]["tasks"]
    for task in ("atis", "snips"):
        assert scores[task]["ci95_low"] <= scores[task]["f1"] <= scores[task]["ci95_high"]


# -- the paper's tables ------------------------------------------------------------------------
def test_paper_alone_prints_the_published_tables_with_recomputed_best(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./runs here
    result = CliRunner().invoke(app, ["compare", "--paper", "--output", str(tmp_path / "paper.md")])
    assert result.exit_code == 0, result.output
    assert "Table 3 as published" in result.stdout and "0.8839" in result.stdout
    markdown = (tmp_path / "paper.md").read_text()
    assert markdown.count("as published") == 3
    movie = [line for line in markdown.splitlines() if line.startswith("| Movie |")][0]
    # Table 3 Movie: the paper bolds HyperFormer's 0.8788; UniPELT-T5's 0.8839 is the best.
    assert "**0.8839**" in movie and "**0.8788**" not in movie
    assert "| Average | 0.8537 | 0.8740 | 0.8795 | **0.8811** | 0.8709 |" in markdown
    assert "2407.01411" in markdown


def test_delta_paper_is_ours_minus_published_on_the_papers_backbone():
    result = fake_result()
    result.results["model"] = "t5-base"
    table = comparison_table(result, 0.1, model="t5-base", paper=True, intervals=False)
    delta = table.delta_paper()
    assert list(delta.columns) == ["hyperloader", "unipelt"]  # lora-only is not in the paper
    assert delta.at["ATIS", "hyperloader"] == pytest.approx(0.91234 - 0.9172)
    assert delta.at["SNIPS", "unipelt"] == pytest.approx(0.85 - 0.8991)  # UniPELT on T5: the T5 column
    assert delta.at["Average", "hyperloader"] == pytest.approx((0.91234 + 0.8) / 2 - (0.9172 + 0.8970) / 2)
    markdown = to_markdown(table)
    assert "Δ paper (ours − published, per cell)" in markdown and f"| ATIS | {0.91234 - 0.9172:+.4f} |" in markdown
    minilm = comparison_table(fake_result(), 0.1, paper=True, intervals=False)
    assert minilm.delta_paper() is None and "Δ paper" not in to_markdown(minilm)


# -- recipes: the paper's settings, and the running comparison's folders -----------------------
@pytest.mark.parametrize("name", ["paper-table3.toml", "paper-table4.toml"])
def test_paper_recipes_carry_the_authors_released_settings(name):
    settings, section = read_compare_recipe(REPO / "recipes" / name)
    config = TrainConfig.from_dict(settings)
    # batch 128 = 32 per device x 4 processes (issue 18); tests/test_recipes.py checks every key.
    assert (config.model, config.batch_size, config.lr, config.schedule, config.warmup_steps) == ("t5-base", 128, 3e-4, "linear", 500)
    assert (config.max_steps, config.label_smoothing, config.temperature, config.select_best_by) == (65536, 0.1, 10.0, "val_loss")
    assert config.method_overrides == {"max_input_length": 128, "max_target_length": 128}
    assert section["split"] == "test" and len(config.tasks) == 7
    assert section["fractions"] == ([1.0] if name == "paper-table3.toml" else [0.1, 0.2])
    # Hyperdecoder keeps its own paper's settings (allenai/hyperdecoders glue_t5_base.json).
    hyperdecoder = section["overrides"]["hyperdecoder"]
    assert (hyperdecoder["batch_size"], hyperdecoder["select_best_by"]) == (128, "avg_f1")
    text = (REPO / "recipes" / name).read_text()
    assert "arguments_results.json" in text and "glue_t5_base.json" in text


CPU_MINILM_RUNS_AT_D46F0CD = [
    "hyperloader-0.1-3b18917e", "hyperformer-0.1-e14d9839", "unipelt-0.1-atis-cec54df5", "unipelt-0.1-snips-54fd941c",
    "unipelt-0.1-movie-86e71ac8", "unipelt-0.1-movietrivia-9f2e8dbc", "unipelt-0.1-restaurant-2f225897",
    "unipelt-0.1-mtop-912bc4cb", "unipelt-0.1-mtod-84771857", "lora-only-0.1-509b1352", "static-0.1-6e8b0bef",
    "full-finetune-0.1-223118f6",
]


def test_a_recipe_without_seeds_plans_the_same_run_folders_as_before_seeds(tmp_path):
    # Folder names copied from plan() at commit d46f0cd, for the recipe as it was then: the
    # comparison started then is found again. The methods list is not part of a run's identity.
    recipe = Path(__file__).parent / "fixtures" / "cpu-minilm-d46f0cd.toml"
    the_plan = plan(recipe=recipe, output_dir=tmp_path, data_dir="../shared/data")
    assert [r.run_dir.name for r in the_plan.runs if r.run_dir is not None] == CPU_MINILM_RUNS_AT_D46F0CD
    seeded = plan(recipe=recipe, output_dir=tmp_path, seeds=[42, 7])
    names = [r.run_dir.name for r in seeded.runs if r.run_dir is not None]
    assert set(CPU_MINILM_RUNS_AT_D46F0CD) < set(names)  # the recipe's own seed (42) keeps its folder
    assert len(names) == 24 and all("-seed7-" in n for n in set(names) - set(CPU_MINILM_RUNS_AT_D46F0CD))


def test_the_longer_cpu_minilm_recipe_reuses_the_converged_fine_tuning_run(tmp_path):
    # The committed table scores full-finetune from the 2,000-step run made at d46f0cd's settings
    # (an override keeps its schedule); the other methods' longer schedules are new runs.
    the_plan = plan(recipe=REPO / "recipes" / "cpu-minilm.toml", output_dir=tmp_path, data_dir="../shared/data")
    names = {r.method: r.run_dir.name for r in the_plan.runs if r.run_dir is not None}
    assert names["full-finetune"] == "full-finetune-0.1-223118f6"
    assert names["hyperloader"] not in CPU_MINILM_RUNS_AT_D46F0CD
    steps = {r.method: r.config.max_steps for r in the_plan.runs if r.config is not None}
    assert steps == {"hyperloader": 5000, "hyperformer": 5000, "unipelt": 1000, "full-finetune": 2000}


def test_bad_seeds_are_usage_errors(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--recipe", str(SMOKE), "--seeds", "1,x", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--seeds '1,x'" in result.stderr
    recipe = tmp_path / "r.toml"
    recipe.write_text('tasks = ["atis"]\n[compare]\nmethods = ["hyperloader"]\nseeds = [1, "2"]\n')
    with pytest.raises(HLError, match="seeds must be a non-empty list of integers"):
        plan(recipe=recipe)


def test_ties_come_from_the_paired_bootstrap_over_the_runs_predictions(tmp_path):
    from seqeval.metrics import f1_score

    gold = [["B-a", "O"] if i % 2 else ["O", "B-b"] for i in range(200)]
    wrong = lambda tags: ["O"] * len(tags)  # noqa: E731
    predictions = {
        "best": gold,
        "close": [wrong(g) if i < 2 else g for i, g in enumerate(gold)],  # 2 sentences missed
        "far": [wrong(g) if i < 50 else g for i, g in enumerate(gold)],  # 50 missed
    }
    rows = []
    for method, pred in predictions.items():
        folder = tmp_path / method / "predictions" / "test"
        folder.mkdir(parents=True)
        lines = [json.dumps({"tokens": ["w", "x"], "gold": g, "pred": p}) for g, p in zip(gold, pred)]
        (folder / "atis.jsonl").write_text("\n".join(lines) + "\n")
        rows.append({"method": method, "model": None, "fraction": 0.1, "seed": None, "task": "atis",
                     "f1": f1_score(gold, pred), "total": 10, "trainable": 1, "run_dir": str(tmp_path / method)})
    result = CompareResult(tmp_path, "test", list(predictions), [0.1], ["atis"], pd.DataFrame(rows))
    table = comparison_table(result, 0.1)
    assert table.best()["ATIS"] == ["best"] and table.tied()["ATIS"] == ["close"]
    p = table.stats.p_value.loc["ATIS"]
    # "close" ties unless a resample draws one of its 2 misses: p ≈ (1 - 2/200)^200 ≈ 0.134.
    assert math.isnan(p["best"]) and p["close"] == pytest.approx(0.134, abs=0.04) and p["far"] == 0.0
    assert table.stats.ci_low.at["ATIS", "best"] == table.stats.ci_high.at["ATIS", "best"] == 1.0
    header, body = table.cells(bold=lambda text: f"<{text}>")
    assert body[0] == ["ATIS", "<1.0000>", f"{rows[1]['f1']:.4f}≈", f"{rows[2]['f1']:.4f}"]
    assert "$^\\approx$" in to_latex(table)


def test_recipe_seeds_repeat_every_run_and_the_flag_wins(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('tasks = ["atis", "snips"]\nseed = 1\n[compare]\nmethods = ["hyperloader", "unipelt"]\nseeds = [1, 2]\n')
    runs = plan(recipe=recipe, output_dir=tmp_path).runs
    assert [(r.method, r.tasks, r.seed) for r in runs] == [
        ("hyperloader", ["atis", "snips"], 1), ("hyperloader", ["atis", "snips"], 2),
        ("unipelt", ["atis"], 1), ("unipelt", ["snips"], 1), ("unipelt", ["atis"], 2), ("unipelt", ["snips"], 2),
    ]
    assert [r.config.seed for r in runs] == [1, 2, 1, 1, 2, 2]
    # The recipe's own seed (1) keeps the unseeded name; the other seed is named.
    assert [r.run_dir.name.rsplit("-", 1)[0] for r in runs[:2]] == ["hyperloader-1", "hyperloader-1-seed2"]
    assert [r.seed for r in plan(recipe=recipe, output_dir=tmp_path, seeds=[5]).runs] == [5, 5, 5]


def _fake_run(folder: Path, *, method: str, tasks: list[str], seed: int, lr: float, f1: float, mtime: int) -> None:
    """A scored run folder as hl train + hl evaluate leave it (weights are not read when collecting)."""
    best = folder / "checkpoints" / "best"
    best.mkdir(parents=True)
    (best / "model.safetensors").write_bytes(b"")
    checkpoint = {"method": method, "method_config": {}, "backbone": "minilm", "tasks": tasks, "parameters": {"total": 100, "trainable": 10}}
    (best / "config.json").write_text(json.dumps(checkpoint))
    config = TrainConfig(tasks=tasks, method=method, model="minilm", fraction=0.1, seed=seed, lr=lr)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    scores = {"test": {"tasks": {t: {"f1": f1} for t in tasks}}}
    (folder / "eval.json").write_text(json.dumps(scores))
    os.utime(folder / "eval.json", (mtime, mtime))


def test_collect_averages_seeds_and_keeps_only_the_latest_setting(tmp_path):
    from hlcli.compare import collect_runs

    _fake_run(tmp_path / "a", method="hyperloader", tasks=["atis", "snips"], seed=1, lr=1e-4, f1=0.5, mtime=2_000)
    _fake_run(tmp_path / "b", method="hyperloader", tasks=["atis", "snips"], seed=2, lr=1e-4, f1=0.7, mtime=2_001)
    _fake_run(tmp_path / "old", method="hyperloader", tasks=["atis", "snips"], seed=3, lr=3e-4, f1=0.1, mtime=1_000)
    for task, f1 in (("atis", 0.8), ("snips", 0.2)):
        _fake_run(tmp_path / f"u-{task}", method="unipelt", tasks=[task], seed=42, lr=1e-4, f1=f1, mtime=1_500)
    (tmp_path / "unscored").mkdir()
    said = []
    result = collect_runs(runs_dir=tmp_path, log=said.append)
    assert result.methods == ["hyperloader", "unipelt"] and result.tasks == ["atis", "snips"]
    assert said == [f"{tmp_path / 'old'}: same method, backbone and fraction as a more recent run with other settings, left out"]
    (table,) = result.tables()
    assert table.title.startswith("test micro-F1, 10% of the training data, minilm")
    assert table.scores.at["ATIS", "hyperloader"] == pytest.approx(0.6) and table.std.at["ATIS", "hyperloader"] == pytest.approx(0.1414, abs=1e-4)
    assert table.scores.at["Average", "unipelt"] == pytest.approx(0.5)
    assert table.headers == {"hyperloader": "HyperLoader [100/10]", "unipelt": "UniPELT† [200/20]"}
    assert table.stats.ci_low.isna().all().all()  # no predictions files: no interval, never a made-up one


def test_cell_csv_has_empty_statistics_for_a_method_that_could_not_run():
    # A method with no runs (hyperdecoder on an encoder) has no column in the statistics frames.
    from hlcli.compare.render import cell_frame
    from hlcli.compare.stats import CellStats

    table = comparison_table(fake_result({"hyperdecoder": "n/a (needs decoder)"}), 0.1)
    ran = pd.DataFrame(0.5, index=table.scores.index, columns=["hyperloader", "lora-only", "unipelt"])
    table.stats = CellStats(ci_low=ran, ci_high=ran, p_value=ran)
    cells = cell_frame([table]).set_index(["dataset", "method"])
    assert math.isnan(cells.loc[("ATIS", "hyperdecoder"), "ci95_low"])
    assert cells.loc[("ATIS", "hyperloader"), "ci95_low"] == 0.5
