"""The training loop with a tiny fake model: it learns, resumes bit-exactly, stops cleanly."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from _fake_model import one_torch_thread, use_fake
from hlcli import runs
from hlcli.config import TrainConfig, load_config, read_config
from hlcli.errors import HLError, UsageError
from hlcli.evaluation import evaluate, score
from hlcli.training import resume_config, train


@pytest.fixture(autouse=True)
def _fake(monkeypatch):
    use_fake(monkeypatch)
    with one_torch_thread():
        yield


def config(tmp_path, name="run", **kwargs) -> TrainConfig:
    settings = dict(
        tasks=["flights", "music"],
        method="fake",
        model="none",
        lr=0.05,
        batch_size=8,
        max_steps=40,
        warmup_steps=4,
        eval_every=10,
        checkpoint_every=10,
        log_every=5,
        output_dir=str(tmp_path / name),
    )
    settings.update(kwargs)
    return TrainConfig(**settings)


def hook_model(monkeypatch, hook):
    """Install ``hook`` on every fake model the loop builds."""
    import _fake_model
    import hlcli.training

    def build(*args, **kwargs):
        model = _fake_model.build_fake(*args, **kwargs)
        model.hook = hook
        return model

    monkeypatch.setattr(hlcli.training, "build_model", build)


def tensors(folder, name="model.safetensors"):
    return load_file(str(folder / name))


def test_the_fake_model_learns_and_the_run_folder_has_the_documented_layout(tmp_path):
    result = train(config(tmp_path, eval_f1=True))
    run = result.run_dir
    assert result.steps == 40 and result.best_metric == "val_loss" and result.best_step is not None
    assert result.final_metrics["avg_f1"] > 0.95

    records = [json.loads(line) for line in (run / runs.METRICS).read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0] / 10
    evals = [r for r in records if "eval" in r]
    assert [r["step"] for r in evals] == [10, 20, 30, 40]
    assert "val_loss" in evals[0]["eval"] and "f1/music" in evals[0]["eval"]
    log = (run / runs.TRAIN_LOG).read_text()
    assert "step 5 loss" in log and "eval step 40: val_loss" in log

    assert read_config(run / runs.CONFIG) == config(tmp_path, eval_f1=True)
    for which in (runs.LAST, runs.BEST):
        folder = runs.checkpoint_dir(run, which)
        names = {p.name for p in folder.iterdir()}
        assert names == {"model.safetensors", "config.json", "README.md", "trainer_state.json", "optimizer.safetensors", "rng.safetensors"}
    state = json.loads((runs.checkpoint_dir(run, runs.LAST) / runs.TRAINER_STATE).read_text())
    assert state["step"] == 40 and state["sampler"]["draws"] == 40
    best_state = json.loads((runs.checkpoint_dir(run, runs.BEST) / runs.TRAINER_STATE).read_text())
    assert best_state["step"] == result.best_step
    # No pickle anywhere, no temp folders left behind.
    for path in run.rglob("*"):
        assert not path.name.startswith("."), path
        if path.is_file():
            assert path.suffix in {".json", ".jsonl", ".log", ".md", ".safetensors"}, path
            assert path.read_bytes()[:2] not in (b"\x80\x02", b"\x80\x04", b"PK"), path

    # The model memorises its training slice (scored with seqeval through evaluate()).
    scored = evaluate(run, split="train")
    assert scored.average >= 0.95


@pytest.mark.parametrize("group_by_length", [False, True], ids=["random-batches", "grouped-by-length"])
def test_resume_after_ctrl_c_equals_an_uninterrupted_run_bitwise(tmp_path, monkeypatch, group_by_length):
    settings = dict(max_steps=12, grad_accum=2, eval_every=4, checkpoint_every=100, log_every=1, group_by_length=group_by_length)
    straight = train(config(tmp_path, "straight", **settings))

    def ctrl_c(model, calls):
        if calls == 11:  # inside step 6 (2 micro-batches per step): Ctrl-C mid-step
            os.kill(os.getpid(), signal.SIGINT)

    hook_model(monkeypatch, ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(config(tmp_path, "split", **settings))
    split_run = tmp_path / "split"
    last = runs.checkpoint_dir(split_run, runs.LAST)
    assert json.loads((last / runs.TRAINER_STATE).read_text())["step"] == 6
    assert "interrupted at step 6" in (split_run / runs.TRAIN_LOG).read_text()

    monkeypatch.undo()
    use_fake(monkeypatch)
    resumed = train(resume_config(split_run), resume=True)
    assert resumed.steps == 12
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


def test_non_finite_loss_stops_naming_step_and_task_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    def nan_at_7(model, calls):
        return torch.tensor(float("nan"), requires_grad=True) if calls == 7 else None

    hook_model(monkeypatch, nan_at_7)
    with pytest.raises(HLError, match=r"non-finite loss \(nan\) at step 7 on task '(flights|music)'") as error:
        train(config(tmp_path, checkpoint_every=5, eval_every=5))
    assert error.value.exit_code == 1 and "(step 5) is the last good checkpoint" in str(error.value)
    last = runs.checkpoint_dir(tmp_path / "run", runs.LAST)
    assert json.loads((last / runs.TRAINER_STATE).read_text())["step"] == 5


def test_skip_nonfinite_skips_the_batch_and_finishes(tmp_path, monkeypatch):
    def nan_at_7(model, calls):
        return torch.tensor(float("inf"), requires_grad=True) if calls == 7 else None

    hook_model(monkeypatch, nan_at_7)
    result = train(config(tmp_path, max_steps=12, skip_nonfinite=True))
    assert result.steps == 12 and result.skipped_batches == 1
    assert "non-finite loss or gradient, batch skipped" in (result.run_dir / runs.TRAIN_LOG).read_text()


def test_non_finite_gradient_with_finite_loss_is_caught(tmp_path, monkeypatch):
    def inf_gradient(model, calls):
        if calls == 4:  # finite loss whose gradient overflows
            return (model.embed.weight[0, 0] * 0).sqrt() + 1.0  # d sqrt(x)/dx at 0 is inf
        return None

    hook_model(monkeypatch, inf_gradient)
    with pytest.raises(HLError, match=r"non-finite gradient norm \((nan|inf)\) at step 4"):
        train(config(tmp_path, max_steps=8))


def test_select_best_by_avg_f1_computes_f1_and_keeps_the_highest(tmp_path):
    result = train(config(tmp_path, select_best_by="avg_f1", max_steps=20))
    assert result.best_metric == "avg_f1" and 0.0 <= result.best_value <= 1.0
    assert "avg_f1" in result.final_metrics


def test_an_existing_run_folder_is_not_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    with pytest.raises(UsageError, match="already exists"):
        train(config(tmp_path))


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    with pytest.raises(UsageError, match="unknown task 'nope'"):
        train(config(tmp_path, tasks=["flights", "nope"]))
    assert not (tmp_path / "run").exists()


def test_resume_needs_a_last_checkpoint(tmp_path):
    with pytest.raises(HLError, match="nothing to resume"):
        resume_config(tmp_path)


def test_evaluate_writes_predictions_eval_json_and_output(tmp_path):
    run = train(config(tmp_path, max_steps=20)).run_dir
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
    run = train(config(tmp_path, max_steps=5)).run_dir
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
