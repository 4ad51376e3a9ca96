"""The training loop's own promises: same numbers as before its restructuring, no host sync per step,
a ready-built (partly frozen) model can be trained."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from _fake_model import FakeTagger, use_fake
from hlcli import runs
from hlcli.config import TrainConfig
from hlcli.errors import UsageError
from hlcli.methods.base import TaskSpec
from hlcli.training import train

# Logged losses of the run below, given by hlcli.training at d46f0cd (before the loop was split into
# hlcli/training/ and stopped reading the loss every step). Bit-identical on the machine that
# recorded them; the tolerance only allows another CPU's kernels.
PINNED_FAKE_LOSSES = [2.0161383152008057, 1.9413461089134216, 1.426300585269928, 1.401397168636322, 0.7048927247524261,
                      0.46471957862377167, 0.1631775200366974, 0.05472876504063606, 0.06518657319247723, 0.026076069101691246]  # fmt: skip
PINNED_FAKE_BEST = 0.047315122559666634
# The same for HyperLoader on a tiny random T5 (conftest.save_tiny_t5, seed 0), real ATIS + Restaurant.
PINNED_T5_LOSSES = [11.15709114074707, 11.143893718719482, 10.249700546264648, 9.738362789154053, 9.723275184631348, 9.374333381652832]  # fmt: skip
PINNED_T5_BEST = 9.391154766082764


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread


def fake_config(tmp_path, **kwargs) -> TrainConfig:
    settings = dict(tasks=["flights", "music"], method="fake", model="none", lr=0.05, batch_size=8, max_steps=10, grad_accum=2,
                    warmup_steps=4, eval_every=5, checkpoint_every=5, log_every=1, output_dir=str(tmp_path / "run"))  # fmt: skip
    settings.update(kwargs)
    return TrainConfig(**settings)


def logged_losses(run_dir) -> list[float]:
    return [r["loss"] for r in map(json.loads, (run_dir / runs.METRICS).read_text().splitlines()) if "loss" in r]


def test_a_tiny_run_logs_the_losses_the_original_loop_logged(tmp_path, monkeypatch):
    use_fake(monkeypatch)
    result = train(fake_config(tmp_path))
    assert logged_losses(result.run_dir) == pytest.approx(PINNED_FAKE_LOSSES, rel=1e-6)
    assert result.best_value == pytest.approx(PINNED_FAKE_BEST, rel=1e-6)


@pytest.mark.slow
def test_a_tiny_hyperloader_t5_run_logs_the_losses_the_original_loop_logged(tmp_path, tiny_t5, data_dir):
    config = TrainConfig(tasks=["atis", "restaurant"], model=tiny_t5, data_dir=str(data_dir), fraction=0.003, batch_size=4,
                         lr=3e-3, warmup_steps=2, schedule="constant", method_overrides={"reduction_factor": 4}, max_steps=6,
                         grad_accum=2, eval_every=3, checkpoint_every=3, log_every=1, output_dir=str(tmp_path / "run"))  # fmt: skip
    result = train(config)
    assert logged_losses(result.run_dir) == pytest.approx(PINNED_T5_LOSSES, rel=1e-5)
    assert result.best_value == pytest.approx(PINNED_T5_BEST, rel=1e-5)


def test_the_loop_reads_device_values_only_at_log_eval_and_checkpoint_steps(tmp_path, monkeypatch):
    use_fake(monkeypatch)
    reads = []

    def counted(name):
        real = getattr(torch.Tensor, name)

        def read(self):
            if sys._getframe(1).f_globals.get("__name__", "").startswith("hlcli."):  # not torch's own (AdamW's step count)
                reads.append(name)
            return real(self)

        return read

    for name in ("item", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, counted(name))
    result = train(fake_config(tmp_path, max_steps=40, grad_accum=1, log_every=20, eval_every=40, checkpoint_every=40))
    assert result.steps == 40
    # Two syncs of the losses (steps 20 and 40) and one validation (one batch per task): not one per step.
    assert reads.count("tolist") <= 4 and reads.count("item") <= 4, reads


def test_a_ready_built_model_trains_only_what_is_not_frozen(tmp_path, monkeypatch):
    use_fake(monkeypatch)
    model = FakeTagger([TaskSpec("flights", ["from", "to"]), TaskSpec("music", ["artist", "service"])])
    model.embed.weight.requires_grad_(False)
    frozen = model.embed.weight.detach().clone()
    head = model.heads["music"].weight.detach().clone()
    result = train(fake_config(tmp_path), model=model)
    assert result.steps == 10
    assert torch.equal(model.embed.weight, frozen) and not torch.equal(model.heads["music"].weight, head)
    saved = json.loads((runs.checkpoint_dir(result.run_dir, runs.LAST) / runs.TRAINER_STATE).read_text())
    assert saved["step"] == 10


def test_a_ready_built_model_must_serve_every_task(tmp_path, monkeypatch):
    use_fake(monkeypatch)
    with pytest.raises(UsageError, match="does not serve task"):
        train(fake_config(tmp_path), model=FakeTagger([TaskSpec("flights", ["from", "to"])]))
    assert not (tmp_path / "run").exists()
