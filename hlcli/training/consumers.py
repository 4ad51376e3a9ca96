"""What a run does with the loop's steps (:func:`hlcli.training.loop.training_steps`): log the loss every
``log_every``, validate every ``eval_every`` (keeping the best), checkpoint, and stop on a signal or a
non-finite value — each a short function; :func:`consume` calls them in that order after every step.

Only the main process validates and writes the run folder; every process takes the same decisions
(the validation metrics are broadcast), so data-parallel runs stay in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from accelerate.utils import broadcast_object_list

from hlcli import runs
from hlcli.data.example import Example
from hlcli.errors import Diverged
from hlcli.io import Log
from hlcli.sampler import TaskSampler
from hlcli.training import checkpoints, report
from hlcli.training.loop import Loop, NonFinite, StepResult, TrainState, training_steps
from hlcli.training.signals import Interrupted, StopRequest
from hlcli.training.validate import summary, validate


@dataclass
class RunContext:
    """What the consumers share: the loop, its state, and where and to whom they report."""

    loop: Loop
    state: TrainState
    sampler: TaskSampler
    val_sets: dict[str, list[Example]]
    run_dir: Path
    say: Log
    metrics: dict[str, float] = field(default_factory=dict)  # the latest validation's
    window: list[float] = field(default_factory=list)  # training losses since the last logged step

    @property
    def main(self) -> bool:
        return self.loop.accelerator.is_main_process

    def note(self, line: str) -> None:
        """A line for the user and train.log."""
        if self.main:
            runs.append_log(self.run_dir, line)
        self.say(line)


def consume(run: RunContext, *, on_step: Callable[[StepResult], None] | None) -> dict[str, float]:
    """Run the loop to ``max_steps`` (or a stop), doing what each step calls for; the last validation's metrics."""
    config = run.loop.config
    with StopRequest(run.say) as stop:
        try:
            estimate = report.DurationEstimate(max_steps=config.max_steps, report=run.note)
            for result in estimate.timed(training_steps(run.loop, run.state, stop_requested=lambda: stop.requested)):
                if result.skipped:
                    if run.main:
                        runs.append_log(run.run_dir, f"step {result.step}: non-finite loss or gradient, batch skipped")
                    continue
                run.window.extend(result.losses or ())
                if on_step is not None:
                    on_step(result)
                after_step(run, result, stop)
        except NonFinite as error:
            raise non_finite(error, run.run_dir) from None
    return run.metrics


def after_step(run: RunContext, result: StepResult, stop: StopRequest) -> None:
    """Log, validate, checkpoint and stop, as far as ``result.step`` calls for each."""
    config, step = run.loop.config, result.step
    last_step = step == config.max_steps
    if step % config.log_every == 0 or last_step:
        log_loss(run, result)
    if step % config.eval_every == 0 or last_step:
        run.metrics = evaluate(run)
        if run.state.best_step == step or not runs.is_checkpoint_dir(runs.checkpoint_dir(run.run_dir, runs.BEST)):
            save(run, runs.BEST)
    if step % config.checkpoint_every == 0 or last_step or result.stopping:
        save(run, runs.LAST)
    if result.stopping:
        if run.main:
            runs.append_log(run.run_dir, f"interrupted ({stop.name}) at step {step}; checkpoints/last saved")
        run.say(f"interrupted at step {step}; resume with: hl train --resume {run.run_dir}")
        raise Interrupted(stop.signum)


def log_loss(run: RunContext, result: StepResult) -> None:
    """The mean training loss since the last logged step: train.log, metrics.jsonl, the trackers, the user."""
    record = {"step": result.step, "loss": sum(run.window) / len(run.window), "lr": result.lr}
    run.window.clear()
    line = f"step {result.step} loss {record['loss']:.4f} lr {record['lr']:.3e}"
    if run.main:
        runs.append_log(run.run_dir, line)
        runs.append_metrics(run.run_dir, record)
    # A no-op without --report-to.
    run.loop.accelerator.log({"loss": record["loss"], "lr": record["lr"]}, step=result.step)
    run.say(line)


def evaluate(run: RunContext) -> dict[str, float]:
    """Validate (main process), share the metrics, and move the state's best if they improved."""
    loop, state = run.loop, run.state
    config, accelerator = loop.config, loop.accelerator
    metrics = validate(loop.tagger, run.val_sets, config, accelerator) if accelerator.is_main_process else {}
    if accelerator.num_processes > 1:  # every process takes the same best-checkpoint decision
        metrics = broadcast_object_list([metrics])[0]
    value = metrics.get(config.select_best_by)
    lower_is_better = config.select_best_by == "val_loss"
    improved = value is not None and (
        state.best_value is None or (value < state.best_value if lower_is_better else value > state.best_value)
    )
    if improved:
        state.best_value, state.best_step = value, state.step
    line = summary(state.step, metrics, improved)
    if accelerator.is_main_process:
        runs.append_log(run.run_dir, line)
        runs.append_metrics(run.run_dir, {"step": state.step, "eval": metrics})
    accelerator.log(report.eval_scalars(metrics), step=state.step)  # no-op without --report-to
    run.say(line)
    return metrics


def save(run: RunContext, which: str) -> None:
    """Write ``checkpoints/<which>`` (every process calls this; the main one writes)."""
    folder = run.run_dir / runs.CHECKPOINTS / which
    checkpoints.save(folder, run.loop.tagger, run.loop, run.sampler, run.state, run.metrics)


def non_finite(error: NonFinite, run_dir: Path) -> Diverged:
    """The one-line error for a NaN/inf the loop found, naming the last good checkpoint."""
    last = runs.checkpoint_dir(run_dir, runs.LAST)
    kept = (f"{last} (step {runs.checkpoint_step(last)}) is the last good checkpoint"
            if runs.is_checkpoint_dir(last) else "no checkpoint was written yet")  # fmt: skip
    return Diverged(
        f"non-finite {error.what} at step {error.step} on task {error.task!r}",
        hint=f"{kept}; lower --lr, use --mixed-precision no/bf16, or pass --skip-nonfinite to skip such batches",
    )
