"""``hl compare`` with a ``[compare.tune]`` grid: each method's point chosen on validation, then
compared over the seeds on test; end to end on a tiny T5 through the CLI, plus the rules alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from _faults import on_training_loss
from conftest import save_tiny_t5
import hlcli
from hlcli.cli import app
from hlcli.compare import TuningPoint, choose, final_runs, plan, read_compare_recipe
from hlcli.compare.tune import TuneSpec, format_value, grid_edges
from hlcli.data.tasks import load_split
from hlcli.errors import HLError

REPO = Path(__file__).resolve().parent.parent
GRID = [1e-4, 3e-3]
SEEDS = [42, 7]  # 42 is the grid's seed: those final runs are the chosen points' own folders
# Own tasks cut from the real ATIS and SNIPS (sentences per split): the real test splits (1,593
# sentences) would take most of the test's time to decode with a random T5.
SLICES = {"train": 40, "val": 16, "test": 24}
RECIPE = """
model = "t5-small"
fraction = 0.5
batch_size = 4
eval_batch_size = 32
lr = 3e-4
max_steps = 4
warmup_steps = 0
eval_every = 2
checkpoint_every = 2
log_every = 1

[tasks.air]
path = "air"

[tasks.voice]
path = "voice"

[compare]
methods = ["hyperloader", "hyperformer"]
split = "test"
seeds = [42, 7]

[compare.tune]
lr = [1e-4, 3e-3]
steps = 4
"""


def write_slices(folder: Path, data_dir: Path) -> None:
    for task, corpus in (("air", "atis"), ("voice", "snips")):
        (folder / task).mkdir(parents=True)
        for split, count in SLICES.items():
            examples = load_split(corpus, split, data_dir=data_dir)[:count]
            blocks = ["\n".join(f"{token} {tag}" for token, tag in zip(e.tokens, e.tags)) for e in examples]
            (folder / task / f"{split}.conll").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, t5_tokenizer_path, data_dir):
    """The tuned comparison, run once for the module: (folder, CLI args, first result)."""
    out = tmp_path_factory.mktemp("tuned")
    model = save_tiny_t5(out / "tiny-t5", t5_tokenizer_path, num_layers=1)
    write_slices(out, data_dir)
    (out / "tune.toml").write_text(RECIPE, encoding="utf-8")
    args = ["compare", "--recipe", str(out / "tune.toml"), "--model", model, "--output-dir", str(out / "cmp")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared machine: threads only add contention
    try:
        result = CliRunner().invoke(app, [*args, "--output", str(out / "table.md")])
    finally:
        torch.set_num_threads(threads)
    return out, args, result


def read_points(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "cmp" / "tuning.csv")


def test_each_method_is_compared_at_its_point_with_the_best_validation_f1(tuned):
    out, _, result = tuned
    assert result.exit_code == 0, result.output
    points = read_points(out)
    assert list(points["method"]) == ["hyperloader", "hyperloader", "hyperformer", "hyperformer"]
    assert list(points["lr"]) == GRID * 2 and list(points["point"]) == ["lr 1e-4", "lr 3e-3"] * 2
    assert (points["steps"] == 4).all() and (points["seed"] == 42).all()
    chosen = {}
    for method, rows in points.groupby("method", sort=False):
        scores = []
        for _, row in rows.iterrows():
            # The score comes from the point's own run: hl evaluate's val F1 per task, averaged.
            (run_dir,) = row["run_dirs"].split(";")
            val = json.loads((Path(run_dir) / "eval.json").read_text())["val"]["tasks"]
            assert row["val_avg_f1"] == pytest.approx((val["air"]["f1"] + val["voice"]["f1"]) / 2, abs=1e-12)
            assert (row["val_f1_air"], row["val_f1_voice"]) == (val["air"]["f1"], val["voice"]["f1"])
            scores.append(row["val_avg_f1"])
        # The rule: the highest average validation F1, an exact tie going to the point listed first.
        expected = max(range(len(scores)), key=lambda i: (scores[i], -i))
        assert list(rows["chosen"]) == [i == expected for i in range(len(scores))]
        chosen[method] = GRID[expected]

    # The final runs: the chosen lr over both seeds; seed 42 is the chosen point's folder, scored on test.
    finals = pd.read_csv(out / "cmp" / "results.csv")
    assert sorted(finals["seed"].unique()) == sorted(SEEDS) and len(finals) == 2 * 2 * 2
    for method, lr in chosen.items():
        for run_dir in finals[finals["method"] == method]["run_dir"].unique():
            config = json.loads((Path(run_dir) / "config.json").read_text())
            assert config["lr"] == lr and config["max_steps"] == 4
        tuned_dir = points[(points["method"] == method) & points["chosen"]]["run_dirs"].item()
        seed42 = finals[(finals["method"] == method) & (finals["seed"] == 42)]["run_dir"].unique()
        assert list(seed42) == [tuned_dir]
    names = sorted(p.name.rsplit("-", 1)[0] for p in (out / "cmp" / "runs").iterdir())
    assert names == sorted(
        [f"{m}-0.5-tune-lr{format_value(lr)}-seed42" for m in chosen for lr in GRID]
        + [f"{m}-0.5-lr{format_value(lr)}-seed7" for m, lr in chosen.items()]
    )
    assert "6 trained, 0 skipped" in result.stdout  # 4 grid points + 2 seed-7 runs


def test_the_table_names_each_choice_and_the_outputs_keep_every_point(tuned):
    out, args, result = tuned
    assert result.exit_code == 0, result.output
    points = read_points(out)
    chosen = {m: f"lr {format_value(lr)}" for m, lr in points[points["chosen"]][["method", "lr"]].itertuples(index=False)}
    assert "Tuned (val)" in result.stdout and "Tuning: average validation F1 of every grid point" in result.stdout
    markdown = (out / "table.md").read_text()
    assert f"| Tuned (val) | {chosen['hyperloader']} | {chosen['hyperformer']} |" in markdown
    assert "Grids: HyperLoader: lr 1e-4 | 3e-3 (4 steps, seed 42); HyperFormer++: lr 1e-4 | 3e-3 (4 steps, seed 42)" in markdown
    assert markdown.count("| lr 1e-4 |") + markdown.count("| lr 3e-3 |") >= 4  # the grid points' table
    # JSON: every point with its settings, score and chosen flag; the table says what was chosen.
    again = CliRunner().invoke(app, [*args, "--collect-only", "--output", str(out / "table.json")])
    assert again.exit_code == 0, again.output
    data = json.loads((out / "table.json").read_text())
    assert [(p["method"], p["setting"], p["chosen"]) for p in data["tuning"]] == [
        (m, {"lr": lr}, bool(c)) for m, lr, c in points[["method", "lr", "chosen"]].itertuples(index=False)
    ]
    assert [p["val_avg_f1"] for p in data["tuning"]] == pytest.approx(list(points["val_avg_f1"]))
    assert data["tables"][0]["chosen"] == chosen
    # What training took, per method: 2 grid points + 1 seed-7 run of 4 steps (seed 42 is a point's run).
    assert {m: (t["steps"], t["runs"]) for m, t in data["training_time"].items()} == {
        "hyperloader": (12, 3), "hyperformer": (12, 3)
    }
    assert all(t["seconds"] >= 0 for t in data["training_time"].values())
    assert "Training time, as one process" in markdown and "HyperFormer++ ≈ " in markdown
    assert "Scored on the split the settings were chosen on" not in markdown  # test: not the choosing split
    # Each file says what made it: the command (the options given, quoted for a shell) and hlcli's version.
    # (in the command's own order: --recipe, the settings such as --model, then the other options)
    assert data["made_with"]["command"] == (
        f"hl compare --recipe {out / 'tune.toml'} --model {args[4]} --output-dir {out / 'cmp'} --collect-only "
        f"--output {out / 'table.json'}"
    )
    assert data["made_with"]["hlcli"] == hlcli.__version__
    assert markdown.splitlines()[-1].startswith("Made with hlcli ") and "`hl compare --recipe " in markdown
    # CSV: the cells, and every grid point beside them.
    again = CliRunner().invoke(app, [*args, "--collect-only", "--output", str(out / "cells.csv")])
    assert again.exit_code == 0 and "grid points:" in again.stdout
    assert pd.read_csv(out / "cells-tuning.csv")[["method", "lr", "chosen"]].equals(points[["method", "lr", "chosen"]])


def test_a_second_run_reuses_every_point_and_run(tuned):
    out, args, first = tuned
    assert first.exit_code == 0, first.output
    files = {p: p.stat().st_mtime_ns for p in (out / "cmp" / "runs").rglob("*")}
    status = CliRunner().invoke(app, [*args, "--dry-run"])
    assert status.exit_code == 0, status.output
    assert "8 runs planned (4 grid points): 8 finished, 0 to train or resume (0 steps), 0 to score only" in status.stdout
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 trained, 8 skipped" in again.stdout  # 4 points (val) + 4 final runs (test)
    assert {p: p.stat().st_mtime_ns for p in (out / "cmp" / "runs").rglob("*")} == files


def test_an_archive_keeps_no_tensors_and_tables_and_continues_the_same(tuned, tmp_path):
    """--archive: the finished runs without their tensors, predictions gzipped; as --output-dir it
    gives the same cells, intervals and choices, and a continued compare trains nothing."""
    out, args, first = tuned
    assert first.exit_code == 0, first.output
    archive, runs_dir = tmp_path / "archive", out / "cmp" / "runs"
    made = CliRunner().invoke(app, [*args, "--collect-only", "--output", str(tmp_path / "before.csv"),
                                    "--archive", str(archive)])  # fmt: skip
    assert made.exit_code == 0, made.output
    names = sorted(p.name for p in runs_dir.iterdir())
    assert f"archive: {len(names)} finished runs without tensors in {archive / 'runs'}" in " ".join(made.stdout.split())
    assert sorted(p.name for p in (archive / "runs").iterdir()) == names
    kept = [p for p in (archive / "runs").rglob("*") if p.is_file()]
    assert kept and not [p for p in kept if p.suffix == ".safetensors"]
    assert sorted(p.relative_to(archive).as_posix() for p in kept if "predictions" in p.parts) == sorted(
        f"{p.relative_to(out / 'cmp').as_posix()}.gz" for p in runs_dir.rglob("predictions/*/*.jsonl")
    )
    for name in names:
        assert (archive / "runs" / name / "eval.json").read_bytes() == (runs_dir / name / "eval.json").read_bytes()
    # Tabled from the archive: the same cells, intervals, p-values and choices (paths aside).
    from_archive = [*args[:-1], str(archive)]
    again = CliRunner().invoke(app, [*from_archive, "--collect-only", "--output", str(tmp_path / "after.csv")])
    assert again.exit_code == 0, again.output
    before, after = (pd.read_csv(tmp_path / f"{name}.csv") for name in ("before", "after"))
    same = [c for c in before.columns if "run_dir" not in c]
    assert before[same].equals(after[same])
    assert {"ci95_low", "ci95_high"} <= set(before.columns) and before[["ci95_low", "ci95_high"]].notna().all().all()
    points = [pd.read_csv(tmp_path / f"{n}-tuning.csv")[["method", "lr", "chosen"]] for n in ("before", "after")]
    assert points[0].equals(points[1])
    # Continued from the archive: every run is finished; nothing is trained or scored again.
    continued = CliRunner().invoke(app, from_archive)
    assert continued.exit_code == 0, continued.output
    assert "0 trained, 8 skipped" in continued.stdout
    # An archive over the comparison's own runs would strip their tensors: refused, nothing touched.
    refused = CliRunner().invoke(app, [*args, "--collect-only", "--archive", str(out / "cmp")])
    assert refused.exit_code == 2 and "cannot share its folder" in refused.output
    assert sorted(p.name for p in runs_dir.iterdir()) == names and list(runs_dir.rglob("*.safetensors"))


def test_a_chosen_point_archived_before_its_test_score_is_not_trained_over(tuned, tmp_path):
    """Continued from an archive made before the finals scored the chosen point's run on test
    (``--tune-only``, then the disk lost): that run has no weights to score, and training it again
    would replace the validation scores it was chosen by, so hl compare stops and says what to do."""
    out, args, first = tuned
    assert first.exit_code == 0, first.output
    archive = tmp_path / "archive"
    made = CliRunner().invoke(app, [*args, "--collect-only", "--archive", str(archive)])
    assert made.exit_code == 0, made.output
    points = read_points(out)
    chosen = Path(points[points["chosen"]]["run_dirs"].iloc[0].split(";")[0]).name
    eval_json = archive / "runs" / chosen / "eval.json"
    scores = json.loads(eval_json.read_text())
    del scores["test"]  # as it was archived after --tune-only
    eval_json.write_text(json.dumps(scores), encoding="utf-8")
    before = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*"))
    continued = CliRunner().invoke(app, [*args[:-1], str(archive)])
    assert continued.exit_code == 1
    assert "scored before, but no checkpoint of it holds weights" in " ".join(continued.output.split())
    assert chosen in continued.output and "moved away to train it again" in " ".join(continued.output.split())
    assert sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*")) == before
    assert json.loads(eval_json.read_text()) == scores


def test_curves_judge_the_final_runs_and_every_grid_point(tuned, tmp_path):
    out, args, first = tuned
    assert first.exit_code == 0, first.output
    png = tmp_path / "curves.png"
    result = CliRunner().invoke(app, [*args, "--collect-only", "--curves", str(png)])
    assert result.exit_code == 0, result.output
    assert f"curves: {png} (the final runs; the grid points' runs are in the table too)" in result.stdout
    assert png.read_bytes().startswith(b"\x89PNG")
    # The convergence table: the 4 final runs (seed 42 is the chosen point's run), then the
    # points not chosen, named by their setting.
    table, points = pd.read_csv(png.with_suffix(".csv")), read_points(out)
    finals = table[table["grid_point"].isna()]
    methods = ("hyperloader", "hyperformer")
    assert sorted(zip(finals["method"], finals["seed"])) == sorted((m, s) for m in methods for s in SEEDS)
    others, not_chosen = table[table["grid_point"].notna()], points[~points["chosen"]]
    assert sorted(zip(others["method"], others["grid_point"], others["seed"])) == sorted(
        (m, f"lr {format_value(lr)}", 42) for m, lr in not_chosen[["method", "lr"]].itertuples(index=False)
    )
    # --tune-only: only the grid points are tabled, so they are what is drawn.
    result = CliRunner().invoke(app, [*args, "--tune-only", "--curves", str(png)])
    assert result.exit_code == 0, result.output
    assert f"curves: {png} (the grid points' runs: no final run is tabled)" in result.stdout
    assert len(pd.read_csv(png.with_suffix(".csv"))) == len(points)


def test_curves_with_no_run_to_draw_warn_and_write_nothing(tuned, tmp_path):
    _, args, _ = tuned
    png = tmp_path / "curves.png"
    empty = [*args[:-1], str(tmp_path / "nothing-yet")]  # the same recipe, an output folder with no run
    result = CliRunner().invoke(app, [*empty, "--collect-only", "--curves", str(png)])
    assert result.exit_code == 0, result.output
    assert "warning: --curves: no run has a validation loss yet" in result.stderr
    assert not png.exists() and not png.with_suffix(".csv").exists()


def test_the_same_table_on_validation(tuned):
    out, args, first = tuned
    assert first.exit_code == 0, first.output
    result = CliRunner().invoke(app, [*args, "--split", "val", "--output", str(out / "val.json")])
    assert result.exit_code == 0, result.output
    assert "0 trained" in result.stdout and "val micro-F1" in result.stdout
    # Validation chose the settings, and seed 42's runs are the chosen points': the table says so.
    assert "Scored on the split the settings were chosen on, and seed 42's runs are the chosen grid points' own" in (
        " ".join(result.stdout.split())
    )
    (table,) = json.loads((out / "val.json").read_text())["tables"]
    assert table["title"].startswith("val micro-F1") and table["seeds"] == {"hyperloader": 2, "hyperformer": 2}
    # Seed 42 of each method is its chosen grid point: the same run, the same validation scores.
    finals = pd.read_csv(out / "cmp" / "results.csv")
    points = read_points(out)
    for method in ("hyperloader", "hyperformer"):
        best = points[(points["method"] == method) & points["chosen"]].iloc[0]
        mine = finals[(finals["method"] == method) & (finals["seed"] == 42)].set_index("task")["f1"]
        assert (mine["air"], mine["voice"]) == (best["val_f1_air"], best["val_f1_voice"])


def test_the_choice_follows_the_validation_scores_on_disk(tuned, tmp_path):
    # A random tiny T5 after 4 steps may score every point alike (the tie rule then picks the
    # first): here a copy of the comparison gets scores that make the last point the best.
    out, args, first = tuned
    assert first.exit_code == 0, first.output
    shutil.copytree(out / "cmp", tmp_path / "cmp")
    points = read_points(out)
    last = Path(points[points["method"] == "hyperloader"]["run_dirs"].iloc[-1])
    eval_json = tmp_path / "cmp" / "runs" / last.name / "eval.json"
    scores = json.loads(eval_json.read_text())
    scores["val"]["tasks"]["air"]["f1"], scores["val"]["tasks"]["voice"]["f1"] = 0.9, 0.8
    eval_json.write_text(json.dumps(scores))
    copy = [*args[:-1], str(tmp_path / "cmp")]
    result = CliRunner().invoke(app, [*copy, "--collect-only", "--output", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "t.json").read_text())
    hyperloader = [p for p in data["tuning"] if p["method"] == "hyperloader"]
    assert [p["chosen"] for p in hyperloader] == [False, True] and hyperloader[1]["val_avg_f1"] == pytest.approx(0.85)
    assert data["tables"][0]["chosen"]["hyperloader"] == "lr 3e-3"
    # Its final runs at lr 3e-3: seed 42 is the point's run (trained, to score), seed 7 is new.
    assert "hyperloader (fraction 0.5, all tasks, lr 3e-3, seed 7)" in " ".join(data["missing"])
    status = CliRunner().invoke(app, [*copy, "--dry-run"])
    assert status.exit_code == 0, status.output
    rows = {line.split()[1]: line for line in status.stdout.splitlines() if "hyperloader-0.5-" in line and "test" in line}
    assert "to score" in rows[last.name] and "to train" in next(r for n, r in rows.items() if "-lr3e-3-seed7-" in n)
    # A finished grid point shows its mean validation F1 (what the choice is made on); others "—".
    grid = [line for line in status.stdout.splitlines() if last.name in line and "│ val" in line]
    assert len(grid) == 1 and "finished" in grid[0] and grid[0].split()[-2] == "0.8500"
    assert all(line.split()[-2] == "—" for line in status.stdout.splitlines() if "after tuning" in line)
    # What is left, as time at the pace of the runs already trained (hlcli.compare.pace).
    assert "Time left at the pace measured" in status.stdout and "\n  hyperloader: 4 steps × " in status.stdout


def test_a_choice_at_the_grid_edge_is_flagged_in_the_warning_the_table_and_the_csv(tuned, tmp_path):
    # A grid of three for HyperLoader, trained with --tune-only; then the scores on disk decide
    # where the choice falls: at the grid's end (flagged), then inside it (not).
    out, args, first = tuned
    assert first.exit_code == 0, first.output
    for folder in ("air", "voice"):  # (task paths are part of a run's settings: all three points train)
        shutil.copytree(out / folder, tmp_path / folder)
    recipe = tmp_path / "wide.toml"
    recipe.write_text(RECIPE.replace("lr = [1e-4, 3e-3]", "lr = [3e-5, 1e-4, 3e-3]"), encoding="utf-8")
    wide = ["compare", "--recipe", str(recipe), "--model", args[4], "--output-dir", str(tmp_path / "cmp")]
    trained = CliRunner().invoke(app, [*wide, "--methods", "hyperloader", "--tune-only"])
    assert trained.exit_code == 0, trained.output
    assert "3 trained, 0 skipped" in trained.stdout
    # --tune-only tables only the grid (no empty comparison table: no final run was made).
    assert "Tuning: average validation F1" in trained.stdout and "Average" not in trained.stdout
    runs = {Path(r).name.split("-tune-")[1].split("-seed")[0]: Path(r) for r in read_points(tmp_path)["run_dirs"]}

    def set_val(lr: str, f1: float) -> None:
        eval_json = runs[lr] / "eval.json"
        scores = json.loads(eval_json.read_text())
        scores["val"]["tasks"]["air"]["f1"] = scores["val"]["tasks"]["voice"]["f1"] = f1
        eval_json.write_text(json.dumps(scores))

    for lr, f1 in (("lr3e-5", 0.2), ("lr1e-4", 0.3), ("lr3e-3", 0.9)):
        set_val(lr, f1)
    collect = [*wide, "--methods", "hyperloader", "--collect-only", "--tune-only"]
    at_edge = CliRunner().invoke(app, [*collect, "--output", str(tmp_path / "t.md")])
    assert at_edge.exit_code == 0, at_edge.output
    warning = "HyperLoader (fraction 0.5): the chosen point is at its grid's edge (lr 3e-3 is the grid's highest)"
    assert warning in " ".join(at_edge.stderr.split()) and "widen the grid" in at_edge.stderr
    points = read_points(tmp_path)
    assert list(points["at_edge"].fillna("")) == ["", "", "lr 3e-3 is the grid's highest"]
    assert "yes (grid edge)" in (tmp_path / "t.md").read_text()
    status = CliRunner().invoke(app, [*wide, "--methods", "hyperloader", "--dry-run"])  # before the finals start
    assert status.exit_code == 0 and warning in " ".join(status.stderr.split()), status.output

    set_val("lr1e-4", 0.95)  # now the middle of the grid wins: nothing to flag
    inside = CliRunner().invoke(app, [*collect])
    assert inside.exit_code == 0, inside.output
    assert "warning" not in inside.stderr and read_points(tmp_path)["at_edge"].isna().all()


def test_a_grid_point_that_diverges_is_left_out_and_the_tuning_goes_on(tuned, tmp_path, monkeypatch):
    # The second model trained (HyperLoader at lr 3e-3) gets a NaN loss at its second step, as a
    # too-high learning rate gives: the point is recorded as diverged, the others decide.
    out, args, first = tuned
    assert first.exit_code == 0, first.output
    for folder in ("air", "voice"):
        shutil.copytree(out / folder, tmp_path / folder)
    recipe = tmp_path / "one.toml"
    recipe.write_text(RECIPE.replace("seeds = [42, 7]", "seeds = [42]"), encoding="utf-8")
    models: list[int] = []

    def nan_in_the_second_model(model, calls):
        if id(model) not in models:
            models.append(id(model))
        return torch.tensor(float("nan"), requires_grad=True) if models.index(id(model)) == 1 and calls == 2 else None

    on_training_loss(monkeypatch, nan_in_the_second_model)
    command = ["compare", "--recipe", str(recipe), "--model", args[4], "--output-dir", str(tmp_path / "cmp"),
               "--methods", "hyperloader"]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    points = read_points(tmp_path)
    assert list(points["chosen"]) == [True, False]
    message = "non-finite loss (nan) at step 2 on task 'air'"
    assert points["diverged"].fillna("").tolist() == ["", message]
    diverged_run = Path(points["run_dirs"].iloc[1])
    assert json.loads((diverged_run / "diverged.json").read_text()) == {"error": message}
    assert f"diverged ({message}): a grid point left out of the choice" in " ".join(result.stderr.split())
    assert not (diverged_run / "eval.json").exists() and pd.isna(points["val_avg_f1"].iloc[1])
    assert "diverged" in result.stdout  # the tuning table's score cell
    assert len(pd.read_csv(tmp_path / "cmp" / "results.csv")) == 2  # the chosen point, scored on test
    # Nothing left to do: the diverged point is not trained again, and --dry-run says why.
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0 and "0 trained, 3 skipped (finished), 0 missing, 1 grid points diverged" in again.stdout
    status = CliRunner().invoke(app, [*command, "--dry-run"])
    row = next(line for line in status.stdout.splitlines() if diverged_run.name in line)
    assert "diverged" in row and row.split()[-4] == "0"


def test_every_point_diverged_means_no_choice():
    first, second = point({"atis": 0.5, "snips": 0.5}, 1e-4), point({}, 1e-3)
    second.diverged = "non-finite loss at step 3 on task 'atis'"
    assert choose([first, second]) is first  # the diverged point is left out, not waited for
    first.diverged = "non-finite gradient at step 9 on task 'snips'"
    assert choose([first, second]) is None


# -- the rules, without training ---------------------------------------------------------------
def point(f1: dict[str, float], lr: float) -> TuningPoint:
    return TuningPoint("hyperloader", 0.1, {"lr": lr}, 42, 10, ["atis", "snips"], [], scores=f1)


def test_choose_takes_the_best_average_and_the_first_listed_on_a_tie():
    low, high, same = point({"atis": 0.5, "snips": 0.5}, 1e-4), point({"atis": 0.9, "snips": 0.3}, 3e-4), point({"atis": 0.3, "snips": 0.9}, 1e-3)
    assert choose([low, high, same]) is high  # 0.6 vs 0.6: the one listed first
    assert choose([same, high]) is same
    assert choose([low, point({"atis": 0.9}, 3e-4)]) is None  # a point not scored yet: no choice


@pytest.mark.parametrize(
    "grid, setting, edges",
    [
        ({"lr": (1e-4, 3e-4, 1e-3)}, {"lr": 1e-3}, ("lr 1e-3 is the grid's highest",)),
        ({"lr": (3e-4, 1e-4, 1e-3)}, {"lr": 1e-4}, ("lr 1e-4 is the grid's lowest",)),  # by value, not by order
        ({"lr": (1e-4, 3e-4, 1e-3)}, {"lr": 3e-4}, ()),
        ({"lr": (1e-4, 1e-3)}, {"lr": 1e-3}, ()),  # two values: a choice between two, no inside to search
        ({"lr": (1e-4, 3e-4, 1e-3), "warmup_steps": (0, 50, 100)}, {"lr": 3e-4, "warmup_steps": 0},
         ("warmup_steps 0 is the grid's lowest",)),
        ({"schedule": ("linear", "constant", "cosine")}, {"schedule": "linear"}, ()),  # not numbers: no ends
    ],
)
def test_grid_edges(grid, setting, edges):
    assert grid_edges(TuneSpec(grid), setting) == edges


@pytest.mark.parametrize("value, text", [(3e-4, "3e-4"), (1e-4, "1e-4"), (2.5e-5, "2.5e-5"), (0.1, "0.1"), (10.0, "10"), (5, "5"), (True, "true")])
def test_values_in_folder_names(value, text):
    assert format_value(value) == text


def test_plan_names_grid_points_and_reuses_a_point_for_the_final_run_with_its_settings(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'tasks = ["atis", "snips"]\nmodel = "minilm"\nmax_steps = 100\nfraction = 0.1\nhead_lr = 3e-3\n\n[compare]\nmethods = ["hyperloader", "unipelt", "full-finetune"]\n'
        "seeds = [42, 1]\n[compare.tune]\nlr = [1e-4, 3e-4]\nhead_lr = [1e-3, 3e-3]\n"
        "[compare.tune.unipelt]\nlr = [1e-3, 3e-3]\nhead_lr = [3e-3]\nsteps = 50\nseed = 5\n[compare.tune.full-finetune]\nlr = [1e-4]\nhead_lr = [3e-3]\n"
    )
    the_plan = plan(recipe=recipe, output_dir=tmp_path)
    names = [r.run_dir.name.rsplit("-", 1)[0] for r in the_plan.points]
    assert names[:4] == [f"hyperloader-0.1-tune-lr{a}-head_lr{b}-seed42" for a in ("1e-4", "3e-4") for b in ("1e-3", "3e-3")]
    assert names[4:] == [f"unipelt-0.1-{t}-tune-lr{a}-head_lr3e-3-seed5" for a in ("1e-3", "3e-3") for t in ("atis", "snips")]
    assert {r.config.max_steps for r in the_plan.points if r.method == "unipelt"} == {50}
    # A one-point grid trains nothing: fine-tuning runs at that setting, named as untuned runs are.
    assert the_plan.fixed == {("full-finetune", 0.1): {"lr": 1e-4, "head_lr": 3e-3}}
    assert [r.run_dir.name.rsplit("-", 1)[0] for r in the_plan.runs] == ["full-finetune-0.1", "full-finetune-0.1-seed1"]
    finals = final_runs(the_plan, {("hyperloader", 0.1): {"lr": 3e-4, "head_lr": 1e-3}, ("unipelt", 0.1): {"lr": 1e-3, "head_lr": 3e-3}})
    by_name = [r.run_dir.name.rsplit("-", 1)[0] for r in finals]
    # hyperloader's seed-42 run has exactly the point's settings: it is that point's folder.
    assert by_name[:2] == ["hyperloader-0.1-tune-lr3e-4-head_lr1e-3-seed42", "hyperloader-0.1-lr3e-4-head_lr1e-3-seed1"]
    # UniPELT's points had 50 steps and seed 5: its final runs are new.
    assert by_name[2:] == ["unipelt-0.1-atis-lr1e-3-head_lr3e-3", "unipelt-0.1-snips-lr1e-3-head_lr3e-3",
                           "unipelt-0.1-atis-lr1e-3-head_lr3e-3-seed1", "unipelt-0.1-snips-lr1e-3-head_lr3e-3-seed1"]  # fmt: skip
    assert all(r.config.lr == 1e-3 and r.config.max_steps == 100 for r in finals[2:])


@pytest.mark.parametrize(
    "table, message",
    [
        ("lr = 3e-4", "[compare.tune] lr = 0.0003 is not a grid"),
        ("seed = [1, 2]", "[compare.tune] seed = [1, 2] (expected an integer)"),
        ("tasks = [['atis']]", "[compare.tune] cannot tune 'tasks'"),
        ("lrr = [1e-4]", "unknown setting 'lrr'"),
        ("lr = [1e-4, 1e-4]", "[compare.tune] lr = [0.0001, 0.0001] (expected a list of distinct single values)"),
        ("steps = 0\nlr = [1e-4, 3e-4]", "[compare.tune] steps = 0"),
        ("[compare.tune.nope]\nlr = [1e-4]", "unknown method 'nope'"),
    ],
)
def test_bad_grids_name_the_recipe(tmp_path, table, message):
    recipe = tmp_path / "r.toml"
    header = "" if table.startswith("[") else "[compare.tune]\n"
    recipe.write_text(f'tasks = ["atis"]\n[compare]\nmethods = ["hyperloader"]\n{header}{table}\n')
    with pytest.raises(HLError) as error:
        plan(recipe=recipe, output_dir=tmp_path)
    assert message in str(error.value)
    if "unknown method" not in message:
        assert "r.toml" in str(error.value)


def test_the_tuned_cpu_recipe_tunes_four_methods_over_three_seeds(tmp_path):
    recipe = REPO / "recipes" / "cpu-minilm-tuned.toml"
    _, section = read_compare_recipe(recipe)
    assert section["seeds"] == [42, 43, 44]
    the_plan = plan(recipe=recipe, output_dir=tmp_path, data_dir="../shared/data")
    grids = {method: tuned.spec.grid["lr"] for (method, _), tuned in the_plan.tuned.items()}
    # (Each method's three points around its choice in the recipe's first, lost run, and HyperLoader's
    # 3e-4 and then 1e-3 added by the recipe's rule when its third start chose its grid's edge: the recipe says why.)
    assert grids == {
        "hyperloader": (1e-5, 3e-5, 1e-4, 3e-4, 1e-3), "hyperformer": (3e-5, 1e-4, 3e-4),
        "unipelt": (3e-4, 1e-3, 3e-3), "full-finetune": (1e-5, 3e-5, 1e-4),
    }
    # The run lengths of recipes/cpu-minilm.toml (converged there), for the grid points too.
    steps = {r.method: r.config.max_steps for r in the_plan.points}
    assert steps == {"hyperloader": 5000, "hyperformer": 5000, "unipelt": 1000, "full-finetune": 2000}
    assert len(the_plan.points) == 5 + 3 + 3 * 7 + 3 and {r.config.seed for r in the_plan.points} == {42}
    # Fine-tuning at 1e-4 computes what the previous table's fine-tuning run did (same hash).
    assert the_plan.points[-1].run_dir.name == "full-finetune-0.1-tune-lr1e-4-seed42-223118f6"
