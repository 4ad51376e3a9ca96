"""README / docs/ERRORS.md promises about training, each tested through ``hl`` on tiny real models:
``train.log`` records torch version, device and thread count; ``--head-lr`` is the heads' learning
rate; ``--skip-nonfinite`` gives up after 100 non-finite batches *in a row*; ``hl compare --curves``
draws and judges every run's validation-loss curve."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

import hlcli.training.prepare
from _cli import invoke
from _faults import on_training_loss
from hlcli import runs
from test_data_sources import conll_folder

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUICK = ["--batch-size", 4, "--warmup-steps", 0, "--max-val-examples", 3, "--no-progress"]


@pytest.fixture(scope="module")
def mine(tmp_path_factory) -> Path:
    """A small own CoNLL task (train 12, dev 3, test 3 sentences)."""
    return conll_folder(tmp_path_factory.mktemp("data") / "mine", train=12, dev=3, test=3)


def train(tmp: Path, name: str, model: str, mine: Path, *extra) -> tuple[Path, object]:
    result = invoke("train", "--tasks", f"mine={mine}", "--model", model, *QUICK, *extra, "--output-dir", tmp / name)
    return tmp / name, result


# -- train.log: torch, device, threads -----------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_t5, mine) -> dict[str, Path]:
    """Two finished tiny T5 runs (hyperloader, hyperformer), validated at every one of 5 steps and
    scored on val: what ``hl compare`` without a recipe tables."""
    root = tmp_path_factory.mktemp("runs")
    found = {}
    for method in ("hyperloader", "hyperformer"):
        run, result = train(root, method, tiny_t5, mine, "--method", method, "--max-steps", 5, "--eval-every", 1, "--lr", "1e-2")
        assert result.exit_code == 0, result.output
        scored = invoke("evaluate", run, "--split", "val")
        assert scored.exit_code == 0, scored.output
        found[method] = run
    return found


def messages(run: Path) -> list[str]:
    """``train.log`` without the date and time that start each line."""
    return [line.split(" ", 2)[2] for line in (run / runs.TRAIN_LOG).read_text(encoding="utf-8").splitlines()]


def test_train_log_records_torch_version_device_and_thread_count(finished, tmp_path):
    log = messages(finished["hyperloader"])
    device = "cpu" if not torch.cuda.is_available() else next(e.split(" on ")[1].split(",")[0] for e in log if e.startswith("torch "))
    assert device in ("cpu", "cuda", "cuda:0")
    line = f"torch {torch.__version__} on {device}, {torch.get_num_threads()} CPU threads"
    assert line in log
    assert log.index(line) < min(i for i, entry in enumerate(log) if entry.startswith("step "))  # before training
    # A resumed run may run with other threads: each start records its own line.
    run = shutil.copytree(finished["hyperloader"], tmp_path / "resumed")
    result = invoke("train", "--resume", run, "--max-steps", 6, "--no-progress")
    assert result.exit_code == 0, result.output
    log = messages(run)
    assert log.count(line) == 2
    assert log.index("resumed at step 5") > len(log) - 1 - log[::-1].index(line)  # recorded before resuming


# -- hl compare --curves -------------------------------------------------------------------------------
def _cells(stdout: str, method: str) -> list[str]:
    """The cells of ``method``'s row in the convergence table (rich box drawing, one line per row)."""
    (row,) = [line for line in stdout.splitlines() if line.startswith("│") and line.strip("│ ").startswith(method + " ")]
    return [cell.strip() for cell in row.strip("│").split("│")]


def test_compare_curves_draws_and_judges_every_runs_validation_loss(finished, tmp_path):
    png = tmp_path / "curves.png"
    result = invoke("compare", "--runs-dir", finished["hyperloader"].parent, "--split", "val", "--curves", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(PNG_MAGIC) and f"curves: {png}; table: {png.with_suffix('.csv')}" in result.stdout
    table = pd.read_csv(png.with_suffix(".csv"))  # the same table, for scripts and docs
    assert sorted(table["method"]) == sorted(finished) and set(table["steps"]) == {5}
    assert "Best validation loss over the last fifth of each run (converged: fell < 2%)" in result.stdout
    for method, run in finished.items():
        records = [json.loads(line) for line in (run / runs.METRICS).read_text().splitlines()]
        loss = {r["step"]: r["eval"]["val_loss"] for r in records if "eval" in r}
        assert sorted(loss) == [1, 2, 3, 4, 5]
        # 5 steps: the last fifth is step 5, judged against the best of steps 1-4 (up to 80 %).
        best_by = min(loss[step] for step in (1, 2, 3, 4))
        fall, best_at = (best_by - loss[5]) / best_by, min((v, s) for s, v in loss.items())[1]
        seed = json.loads((run / runs.CONFIG).read_text())["seed"]
        row = table[table["method"] == method].iloc[0]
        assert row["best_by_80"] == pytest.approx(best_by) and row["fall"] == pytest.approx(fall)
        assert row["best_step"] == best_at and row["converged"] == (fall < 0.02) and Path(row["run_dir"]) == run
        assert _cells(result.stdout, method) == [
            method, "mine", str(seed), "-", "5", f"{best_by:.4f}", f"{loss[5]:.4f}", f"{fall:.1%}", str(best_at),
            "yes" if fall < 0.02 else "no",
        ]


# -- --head-lr ----------------------------------------------------------------------------------------------
def test_head_lr_is_the_learning_rate_the_heads_are_trained_at(tmp_path, tiny_bert, mine, monkeypatch):
    seen = []
    real = hlcli.training.prepare.param_groups

    def spy(config, model):
        groups = real(config, model)
        seen.append((model, groups, [[p.detach().clone() for p in group["params"]] for group in groups]))
        return groups

    monkeypatch.setattr(hlcli.training.prepare, "param_groups", spy)
    # One step of AdamW moves each weight by lr * g / (|g| + eps): by the group's lr wherever |g| >> eps.
    # No clipping (it would shrink g towards eps) and no schedule: the first step runs at the peak lr.
    _, result = train(tmp_path, "run", tiny_bert, mine, "--lr", "1e-4", "--head-lr", "3e-3", "--max-steps", 1,
                      "--eval-every", 1, "--max-grad-norm", 0, "--schedule", "constant")  # fmt: skip
    assert result.exit_code == 0, result.output
    ((model, groups, before),) = seen
    heads = {id(p) for p in model.head_parameters()}
    assert heads and [group["lr"] for group in groups] == [1e-4, 3e-3]
    assert {id(p) for p in groups[1]["params"]} == heads and not heads & {id(p) for p in groups[0]["params"]}
    for group, start, lr in zip(groups, before, (1e-4, 3e-3)):
        moved = max((p.detach() - p0).abs().max().item() for p, p0 in zip(group["params"], start))
        assert moved == pytest.approx(lr, rel=1e-2)  # float32 weights near 1: the step is exact to ~1e-3
    assert json.loads((tmp_path / "run" / runs.CONFIG).read_text())["head_lr"] == 3e-3


# -- --skip-nonfinite: 100 non-finite batches in a row ------------------------------------------------------
def nan_losses(monkeypatch, nonfinite) -> None:
    """Training losses (never validation's) are NaN at the micro-batches ``nonfinite(n)`` picks.

    A real model, its loss replaced on chosen calls (tests/_faults.py): the promise is about 100
    bad batches *in a row*, which no real model can be made to produce on demand.
    """
    on_training_loss(monkeypatch, lambda model, n: torch.tensor(float("nan"), requires_grad=True) if nonfinite(n) else None)


def test_skip_nonfinite_stops_after_100_nonfinite_batches_in_a_row(tmp_path, tiny_t5, mine, monkeypatch):
    nan_losses(monkeypatch, lambda n: n >= 3)  # two good steps, then nothing but NaN
    _, result = train(tmp_path, "run", tiny_t5, mine, "--skip-nonfinite", "--max-steps", 5, "--eval-every", 5)
    assert result.exit_code == 1, result.output
    assert [line for line in result.stderr.splitlines() if "error" in line] == [
        "error: 100 batches in a row gave a non-finite loss or gradient at step 3; lower --lr or check the data"]
    assert "Traceback" not in result.output


def test_skip_nonfinite_counts_only_batches_in_a_row(tmp_path, tiny_t5, mine, monkeypatch):
    # Two streaks of 99, split by one good batch: 198 skipped, and the run ends normally.
    nan_losses(monkeypatch, lambda n: 3 <= n <= 101 or 103 <= n <= 201)
    _, result = train(tmp_path, "run", tiny_t5, mine, "--skip-nonfinite", "--max-steps", 4, "--eval-every", 4)
    assert result.exit_code == 0, result.output
    assert "trained 4 steps" in result.stdout and "skipped 198 batches" in result.stdout
