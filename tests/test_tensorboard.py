"""``--report-to tensorboard``: the scalars of metrics.jsonl, as TensorBoard events in the run folder."""

from __future__ import annotations

import json

import pytest

from _cli import invoke
from hlcli import runs
from hlcli.config import TrainConfig
from hlcli.training import train

pytest.importorskip("tensorboard", reason="--report-to tensorboard needs the tensorboard extra (pip install -e '.[test]')")
pytestmark = pytest.mark.usefixtures("one_thread")


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_run_reporting_to_tensorboard_writes_the_metrics_jsonl_scalars(tmp_path, tiny_t5, toy_tasks):
    # A real run: conftest's tiny T5 (HyperLoader) on the toy corpora.
    config = TrainConfig(tasks=toy_tasks("flights", "music").split(","), model=tiny_t5, method_overrides={"reduction_factor": 4},
                         batch_size=8, max_steps=6, lr=3e-3, warmup_steps=1, eval_every=3, checkpoint_every=3, log_every=2,
                         report_to="tensorboard", output_dir=str(tmp_path / "run"))  # fmt: skip
    train(config)
    records = [json.loads(line) for line in (tmp_path / "run" / runs.METRICS).read_text().splitlines()]
    scalars = _scalars(tmp_path / "run" / "tensorboard")
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
    assert [step for step, _ in scalars["loss"]] == [step for step, _ in losses] == [2, 4, 6]
    # TensorBoard stores float32: equal to the logged float64 within float32 rounding (rel 1e-6).
    assert [value for _, value in scalars["loss"]] == pytest.approx([value for _, value in losses], rel=1e-6)
    assert [step for step, _ in scalars["lr"]] == [2, 4, 6]
    evals = [(r["step"], r["eval"]["val_loss"]) for r in records if "eval" in r]
    assert [s for s, _ in scalars["eval/val_loss"]] == [3, 6]
    assert [v for _, v in scalars["eval/val_loss"]] == pytest.approx([v for _, v in evals], rel=1e-6)
    assert "eval/val_loss/flights" in scalars


def test_report_to_accepts_only_tensorboard():
    result = invoke("train", "--tasks", "atis", "--report-to", "wandb")
    assert result.exit_code == 2 and "report_to = 'wandb'" in result.stderr and "tensorboard" in result.stderr


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch):
    import accelerate.utils

    from hlcli.errors import UsageError
    from hlcli.training import report

    monkeypatch.setattr(accelerate.utils, "is_tensorboard_available", lambda: False)
    with pytest.raises(UsageError, match="needs the tensorboard package") as error:
        report.log_with(TrainConfig(tasks=["atis"], report_to="tensorboard"))
    assert error.value.hint == "pip install 'hlcli[tensorboard]'"
