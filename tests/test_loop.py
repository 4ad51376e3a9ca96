"""The training loop's own promises, on a tiny real HyperLoader T5 and the toy corpora (conftest):
it logs the mean loss of the micro-batches it trained on, the same seed gives the same bits, no
host sync per step, a ready-built (partly frozen) model can be trained.

No figure here was pasted from a run: a CPU's kernels change the last bits of every loss (issue
17), so each check compares two things computed in the same process.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import load_file

from hlcli import runs
from hlcli.config import TrainConfig
from hlcli.errors import UsageError
from hlcli.methods import build_model
from hlcli.methods.base import TaskSpec
from hlcli.methods.plain.t5 import PlainT5Tagger
from hlcli.training import train

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread

TOY_SPECS = [TaskSpec("flights", ["from", "to"]), TaskSpec("music", ["artist", "service"])]  # conftest.toy_tasks' labels


@pytest.fixture
def config(tmp_path, tiny_t5, toy_tasks):
    """A real run in seconds: the tiny T5 (HyperLoader, the default method) on the toy corpora."""

    def make(name: str = "run", **kwargs) -> TrainConfig:
        settings = dict(tasks=toy_tasks("flights", "music"), model=tiny_t5, lr=3e-3, batch_size=8, max_steps=6, grad_accum=2,
                        warmup_steps=2, eval_every=3, checkpoint_every=3, log_every=2, method_overrides={"reduction_factor": 4},
                        output_dir=str(tmp_path / name))  # fmt: skip
        settings.update(kwargs)
        return TrainConfig(**settings)

    return make


def logged_losses(run_dir) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (run_dir / runs.METRICS).read_text().splitlines()) if "loss" in r]


def saved_tensors(run_dir, which: str = runs.LAST) -> dict[str, torch.Tensor]:
    return load_file(runs.checkpoint_dir(run_dir, which) / runs.MODEL_WEIGHTS)


def test_a_run_logs_the_mean_loss_of_the_micro_batches_it_trained_on(config, monkeypatch):
    """Replaces the losses pinned from the loop before its restructuring (d46f0cd): what that
    guarded, that deferring the loss reads (no ``.item()`` per step) logs the right numbers, is
    checked against the losses the model returned, recorded as the loop called it."""
    returned: list[torch.Tensor] = []
    loss = PlainT5Tagger.loss

    def recorded(self, *args, **kwargs):
        value = loss(self, *args, **kwargs)
        returned.append(value.detach().clone())  # kept on the device: no sync added to the loop
        return value

    monkeypatch.setattr(PlainT5Tagger, "loss", recorded)
    result = train(config(max_steps=6, grad_accum=2, log_every=2, eval_every=6))
    assert result.steps == 6
    # The loop's validation calls the loss too (one batch per task, after the training steps).
    micro = [float(v) for v in returned[: 6 * 2]]
    per_step = [(micro[2 * i] + micro[2 * i + 1]) / 2 for i in range(6)]
    expected = [(step, (per_step[step - 2] + per_step[step - 1]) / 2) for step in (2, 4, 6)]
    logged = logged_losses(result.run_dir)
    assert [step for step, _ in logged] == [2, 4, 6]
    # float64 means of the same float32 values; the loop may add them in another order: 2 float64 roundings
    assert [value for _, value in logged] == pytest.approx([value for _, value in expected], rel=1e-15)
    assert len(set(micro)) > 1  # really the micro-batches' own losses, not one repeated value


def test_the_same_seed_gives_bitwise_the_same_run(config):
    """Same machine, same thread count (README, "Reproducibility"): logged losses, best value and
    every saved tensor equal to the bit; another seed changes them (the check can fail)."""
    first = train(config("first"))
    second = train(config("second"))
    other = train(config("other", seed=7, max_steps=2, eval_every=2, checkpoint_every=2))
    assert logged_losses(first.run_dir) == logged_losses(second.run_dir)
    assert first.best_value == second.best_value and first.best_step == second.best_step
    a, b = saved_tensors(first.run_dir), saved_tensors(second.run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert logged_losses(other.run_dir)[0] != logged_losses(first.run_dir)[0]  # step 2


def test_the_loop_reads_device_values_only_at_log_eval_and_checkpoint_steps(config, monkeypatch):
    reads = []

    def counted(name):
        real = getattr(torch.Tensor, name)

        def read(self):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("hlcli."):  # hlcli's reads, the model's included (not torch's own: AdamW's step count)
                reads.append(name)
            return real(self)

        return read

    for name in ("item", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, counted(name))
    result = train(config(max_steps=12, grad_accum=1, log_every=6, eval_every=12, checkpoint_every=12))
    assert result.steps == 12
    # Two syncs of the losses (steps 6 and 12) and one validation (one read per task): not one per step.
    assert 2 <= reads.count("tolist") + reads.count("item") <= 6, reads


def test_a_ready_built_model_trains_only_what_is_not_frozen(config, tiny_t5):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TOY_SPECS, overrides={"reduction_factor": 4})
    model.source.task_embeddings.weight.requires_grad_(False)
    frozen = model.source.task_embeddings.weight.detach().clone()
    generator = model.source.hypernetworks["encoder"].adapter_down.weight.detach().clone()
    result = train(config(), model=model)
    assert result.steps == 6
    assert torch.equal(model.source.task_embeddings.weight, frozen)
    assert not torch.equal(model.source.hypernetworks["encoder"].adapter_down.weight, generator)
    saved = json.loads((runs.checkpoint_dir(result.run_dir, runs.LAST) / runs.TRAINER_STATE).read_text())
    assert saved["step"] == 6


def test_a_ready_built_model_must_serve_every_task(config, tiny_t5, tmp_path):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TOY_SPECS[:1], overrides={"reduction_factor": 4})
    with pytest.raises(UsageError, match="does not serve task"):
        train(config(), model=model)
    assert not (tmp_path / "run").exists()
