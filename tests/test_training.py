"""The training loop on real parts (conftest's tiny T5, toy corpora read as own data): the run folder
it writes, bit-exact resume, clean stops. That it learns: tests/test_e2e_learning.py."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
import torch
from safetensors.torch import load_file

from _faults import ctrl_c_at, loss_at, on_training_loss
from hlcli import runs
from hlcli.config import TrainConfig, load_config, read_config
from hlcli.errors import HLError, UsageError
from hlcli.evaluation import evaluate
from hlcli.scoring import score
from hlcli.training import resume_config, train


pytestmark = pytest.mark.usefixtures("one_thread")
REAL: dict = {}  # model and tasks of config() below, set for each test by _real_parts


@pytest.fixture(autouse=True)
def _real_parts(tiny_t5, toy_tasks):
    REAL.update(model=tiny_t5, tasks=toy_tasks("flights", "music").split(","))


def config(tmp_path, name="run", **kwargs) -> TrainConfig:
    """A real run in seconds: HyperLoader on the tiny T5, flights (96 sentences) and music (32)."""
    settings = dict(
        tasks=REAL["tasks"],
        model=REAL["model"],
        method_overrides={"reduction_factor": 4},
        lr=3e-3,
        batch_size=8,
        max_steps=4,
        warmup_steps=1,
        eval_every=2,
        checkpoint_every=2,
        log_every=1,
        output_dir=str(tmp_path / name),
    )
    settings.update(kwargs)
    return TrainConfig(**settings)


def tensors(folder, name="model.safetensors"):
    return load_file(str(folder / name))


def test_the_run_folder_has_the_documented_layout(tmp_path):
    result = train(config(tmp_path, eval_f1=True))
    run = result.run_dir
    assert result.steps == 4 and result.best_metric == "val_loss" and result.best_step in (2, 4)
    assert 0.0 <= result.final_metrics["avg_f1"] <= 1.0  # learning: tests/test_e2e_learning.py

    records = [json.loads(line) for line in (run / runs.METRICS).read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in records if "loss" in r)
    evals = [r for r in records if "eval" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert "val_loss" in evals[0]["eval"] and "f1/music" in evals[0]["eval"]
    log = (run / runs.TRAIN_LOG).read_text()
    assert "step 3 loss" in log and "eval step 4: val_loss" in log

    recorded, given = read_config(run / runs.CONFIG), config(tmp_path, eval_f1=True)
    assert dataclasses.replace(recorded, task_sources=given.task_sources) == given
    for task, source in given.task_sources.items():  # own data: where it is, plus what it was when read
        assert recorded.task_sources[task] == {**recorded.task_sources[task], **source} and "sha256" in recorded.task_sources[task]
    for which in (runs.LAST, runs.BEST):
        folder = runs.checkpoint_dir(run, which)
        names = {p.name for p in folder.iterdir()}
        assert names == {"model.safetensors", "config.json", "README.md", "trainer_state.json", "optimizer.safetensors", "rng.safetensors"}
    state = json.loads((runs.checkpoint_dir(run, runs.LAST) / runs.TRAINER_STATE).read_text())
    assert state["step"] == 4 and state["sampler"]["draws"] == 4
    best_state = json.loads((runs.checkpoint_dir(run, runs.BEST) / runs.TRAINER_STATE).read_text())
    assert best_state["step"] == result.best_step
    # No pickle anywhere, no temp folders left behind.
    for path in run.rglob("*"):
        assert not path.name.startswith("."), path
        if path.is_file():
            assert path.suffix in {".json", ".jsonl", ".log", ".md", ".safetensors"}, path
            assert path.read_bytes()[:2] not in (b"\x80\x02", b"\x80\x04", b"PK"), path


@pytest.mark.parametrize("group_by_length", [False, True], ids=["random-batches", "grouped-by-length"])
def test_resume_after_ctrl_c_equals_an_uninterrupted_run_bitwise(tmp_path, monkeypatch, group_by_length):
    settings = dict(max_steps=4, grad_accum=2, eval_every=2, checkpoint_every=100, log_every=1, group_by_length=group_by_length)
    straight = train(config(tmp_path, "straight", **settings))

    with monkeypatch.context() as patch:
        on_training_loss(patch, ctrl_c_at(5))  # inside step 3 (2 micro-batches per step): Ctrl-C mid-step
        with pytest.raises(KeyboardInterrupt):
            train(config(tmp_path, "split", **settings))
    split_run = tmp_path / "split"
    last = runs.checkpoint_dir(split_run, runs.LAST)
    assert json.loads((last / runs.TRAINER_STATE).read_text())["step"] == 3
    assert re.search(r"interrupted\b.* at step 3\b", (split_run / runs.TRAIN_LOG).read_text())

    resumed = train(resume_config(split_run), resume=True)
    assert resumed.steps == 4
    for name in ("model.safetensors", "optimizer.safetensors", "rng.safetensors"):
        a = tensors(runs.checkpoint_dir(straight.run_dir, runs.LAST), name)
        b = tensors(runs.checkpoint_dir(split_run, runs.LAST), name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert resumed.best_step == straight.best_step and resumed.best_value == straight.best_value
    # metrics.jsonl holds each step once, as if never interrupted.
    steps = [json.loads(line)["step"] for line in (split_run / runs.METRICS).read_text().splitlines()]
    straight_steps = [json.loads(line)["step"] for line in (straight.run_dir / runs.METRICS).read_text().splitlines()]
    assert steps == straight_steps


# Non-finite values are injected into the real model's loss (tests/_faults.py): no real model gives
# a nan or an overflowing gradient at a chosen step.
def test_non_finite_loss_stops_naming_step_and_task_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    on_training_loss(monkeypatch, loss_at(5, float("nan")))
    with pytest.raises(HLError, match=r"non-finite loss \(nan\) at step 5 on task '(flights|music)'") as error:
        train(config(tmp_path, max_steps=6))
    assert error.value.exit_code == 1 and "(step 4) is the last good checkpoint" in str(error.value)
    last = runs.checkpoint_dir(tmp_path / "run", runs.LAST)
    assert json.loads((last / runs.TRAINER_STATE).read_text())["step"] == 4


def test_skip_nonfinite_skips_the_batch_and_finishes(tmp_path, monkeypatch):
    on_training_loss(monkeypatch, loss_at(3, float("inf")))
    result = train(config(tmp_path, max_steps=4, skip_nonfinite=True))
    assert result.steps == 4 and result.skipped_batches == 1
    assert "step 3: non-finite loss or gradient, batch skipped" in (result.run_dir / runs.TRAIN_LOG).read_text()


def test_non_finite_gradient_with_finite_loss_is_caught(tmp_path, monkeypatch):
    def inf_gradient(model, calls):
        if calls == 3:  # finite loss whose gradient overflows
            weight = next(p for p in model.parameters() if p.requires_grad)
            return (weight.flatten()[0] * 0).sqrt() + 1.0  # d sqrt(x)/dx at 0 is inf
        return None

    on_training_loss(monkeypatch, inf_gradient)
    with pytest.raises(HLError, match=r"non-finite gradient norm \((nan|inf)\) at step 3"):
        train(config(tmp_path))


def test_select_best_by_avg_f1_computes_f1_and_keeps_the_highest(tmp_path, monkeypatch):
    import hlcli.training.consumers

    # The real validation runs (and must compute the F1s); only the avg_f1 the loop then sees is
    # scripted, rising then falling, since a few steps of a tiny model give no controllable peak.
    real, computed = hlcli.training.consumers.validate, []
    scripted = iter([0.3, 0.6, 0.45])

    def validate(*args, **kwargs):
        metrics = real(*args, **kwargs)
        computed.append(dict(metrics))
        return {**metrics, "avg_f1": next(scripted)}

    monkeypatch.setattr(hlcli.training.consumers, "validate", validate)
    result = train(config(tmp_path, select_best_by="avg_f1", max_steps=6, eval_every=2, checkpoint_every=2))
    assert len(computed) == 3
    for metrics in computed:
        assert 0.0 <= metrics["f1/flights"] <= 1.0 and 0.0 <= metrics["f1/music"] <= 1.0
        assert metrics["avg_f1"] == pytest.approx((metrics["f1/flights"] + metrics["f1/music"]) / 2)
    # The highest (step 4), not the last (step 6).
    assert (result.best_metric, result.best_step, result.best_value) == ("avg_f1", 4, 0.6)
    best, last = (runs.checkpoint_dir(result.run_dir, which) for which in (runs.BEST, runs.LAST))
    assert json.loads((best / runs.TRAINER_STATE).read_text())["step"] == 4
    assert json.loads((last / runs.TRAINER_STATE).read_text())["step"] == 6
    assert not torch.equal(tensors(best)["source.task_embeddings.weight"], tensors(last)["source.task_embeddings.weight"])
    marked = [line.split("eval step ")[1].split(":")[0] for line in (result.run_dir / runs.TRAIN_LOG).read_text().splitlines()
              if "eval step" in line and "(best)" in line]  # fmt: skip
    assert marked == ["2", "4"]


def test_an_existing_run_folder_is_not_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    with pytest.raises(UsageError, match="already exists"):
        train(config(tmp_path))


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    with pytest.raises(UsageError, match="unknown task 'nope'"):
        train(config(tmp_path, tasks=[REAL["tasks"][0], "nope"]))
    assert not (tmp_path / "run").exists()


def test_train_leaves_the_callers_config_as_given(tmp_path, monkeypatch):
    # Unset lr / warmup_steps and no output_dir: train() fills all three, in its own copy only.
    monkeypatch.chdir(tmp_path)
    given = config(tmp_path, max_steps=2, lr=None, warmup_steps=None, output_dir=None)
    before = dataclasses.asdict(given)
    result = train(given)
    assert dataclasses.asdict(given) == before
    assert (given.lr, given.warmup_steps, given.output_dir) == (None, None, None)
    recorded = read_config(result.run_dir / runs.CONFIG)  # what the run itself used
    assert recorded.lr is not None and recorded.warmup_steps is not None
    assert recorded.output_dir == str(result.run_dir) and (tmp_path / result.run_dir).parent == tmp_path / "runs"


def test_a_config_made_by_hl_adapt_needs_its_setup(tmp_path):
    # hlcli.training never imports hlcli.adapt: the caller passes the derived model's setup.
    adapted = dataclasses.replace(config(tmp_path), adapt={"base": str(tmp_path / "base")})
    with pytest.raises(UsageError, match=r"no model setup was given.*setup_for"):
        train(adapted)
    assert not (tmp_path / "run").exists()


def test_resume_needs_a_last_checkpoint(tmp_path):
    with pytest.raises(HLError, match="nothing to resume"):
        resume_config(tmp_path)


def test_evaluate_writes_predictions_eval_json_and_output(tmp_path):
    run = train(config(tmp_path, max_steps=2)).run_dir
    result = evaluate(run, split="test", output=tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["split"] == "test" and set(data["tasks"]) == {"flights", "music"}
    assert data["mode"].startswith("seqeval default mode")
    assert data["average_f1"] == pytest.approx((data["tasks"]["flights"]["f1"] + data["tasks"]["music"]["f1"]) / 2)
    assert data["tasks"]["music"]["sentences"] == 12
    assert json.loads((run / runs.EVAL).read_text())["test"] == data
    records = [json.loads(line) for line in (run / "predictions" / "test" / "flights.jsonl").read_text().splitlines()]
    assert len(records) == 12 and set(records[0]) == {"tokens", "gold", "pred"}
    frame = result.to_frame()
    assert list(frame.index) == ["flights", "music", "Average"]
    assert frame.loc["Average", "f1"] == pytest.approx(result.average)


def test_evaluate_unknown_task_lists_the_models_tasks(tmp_path):
    run = train(config(tmp_path, max_steps=2)).run_dir
    with pytest.raises(UsageError, match="unknown task 'atis'; known tasks: flights, music"):
        evaluate(run, tasks=["atis"])


def test_score_is_conlleval_lenient_and_micro_averaged():
    # Lenient (default) mode: an I- opening a chunk still counts as that chunk.
    assert score([["B-X", "I-X", "O"]], [["I-X", "I-X", "O"]])["f1"] == 1.0
    # Micro average over chunks: 1 of 2 gold chunks found, 1 of 1 predicted is right.
    s = score([["B-X", "O", "B-Y"]], [["B-X", "O", "O"]])
    assert (s["precision"], s["recall"]) == (1.0, 0.5) and s["f1"] == pytest.approx(2 / 3)
    assert score([["O"]], [["O"]])["f1"] == 0.0
    assert score([], [])["f1"] == 0.0


def test_recipe_flags_and_validation(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('tasks = ["atis"]\nlr = 1e-3\nmax_steps = 10\n[method_overrides]\nreduction_factor = 4\n')
    loaded = load_config(recipe, {"lr": 2e-3, "max_steps": None, "method_overrides": {"lora_rank": 8}})
    assert loaded.lr == 2e-3 and loaded.max_steps == 10 and loaded.tasks == ["atis"]
    assert loaded.method_overrides == {"reduction_factor": 4, "lora_rank": 8}
    recipe.write_text('tasks = ["atis"]\nlearning_rate = 1e-3\n')
    with pytest.raises(HLError, match=r"r.toml: unknown setting 'learning_rate' \(expected one of .*lr.*\)"):
        load_config(recipe)
    with pytest.raises(UsageError, match="schedule"):
        TrainConfig(tasks=["atis"], schedule="cosine")
    with pytest.raises(UsageError, match="no tasks"):
        TrainConfig()
    with pytest.warns(UserWarning, match="fp16 overflows"):
        TrainConfig(tasks=["atis"], mixed_precision="fp16")
