"""``TrainConfig``: every knob of a training run, from a TOML recipe and/or CLI flags.

Precedence: dataclass defaults < recipe (``--recipe recipes/x.toml``) < CLI flags. The fully
resolved config is written to the run folder as ``config.json`` so that a run can be resumed
and reproduced from its folder alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hlcli.data.sources import recipe_tasks, resolve_tasks
from hlcli.errors import HLError, UsageError

SCHEDULES = ("constant", "linear")
SELECT_BEST_BY = ("val_loss", "avg_f1")
MIXED_PRECISION = ("no", "bf16", "fp16")
# Recipe tables that belong to other commands (``[compare]`` is read by ``hl compare``).
OTHER_SECTIONS = ("compare",)


def help_field(text: str, **kwargs: Any) -> Any:
    """A dataclass field whose ``help`` metadata documents the option (``hl train --help``, docs).

    The one definition for every config dataclass (TrainConfig here, the methods' configs through
    :mod:`hlcli.methods.common`); this module stays free of torch so the CLI starts fast.
    """
    return field(metadata={"help": text}, **kwargs)


@dataclass
class TrainConfig:
    """One training run. Field ``help`` metadata doubles as recipe documentation."""

    tasks: list[str] = help_field("Tasks (corpora) trained together, e.g. ['atis', 'snips'].", default_factory=list)
    method: str = help_field("Method name from the registry (hyperloader, hyperformer, ...).", default="hyperloader")
    model: str = help_field("Backbone: a model name (t5-base, minilm) or a local folder.", default="t5-base")
    data_dir: str | None = help_field("Folder holding the corpora; None = $HL_DATA_DIR / user cache.", default=None)
    task_sources: dict[str, dict[str, Any]] = help_field(
        "Where each of your own tasks' data lives (a folder or a Hugging Face dataset, see README 'Data'); "
        "filled from --tasks NAME=FOLDER / hf:ORG/NAME or [tasks.NAME] tables; {} = registered corpora only.",
        default_factory=dict,
    )
    fraction: float = help_field("Fraction of each training set used (0 < f <= 1); low-resource runs use 0.1.", default=1.0)
    seed: int = help_field("Seed for the data fraction, model init, sampler and dropout.", default=42)
    lr: float = help_field("Peak learning rate of AdamW.", default=3e-4)
    head_lr: float | None = help_field(
        "Learning rate of per-task output heads (encoder backbones such as minilm); None = lr.", default=None
    )
    batch_size: int = help_field("Sentences per batch (each batch holds one task).", default=32)
    eval_batch_size: int = help_field("Sentences per batch when evaluating/predicting.", default=64)
    schedule: str = help_field("Learning-rate schedule after warm-up: constant | linear (decay to 0).", default="linear")
    warmup_steps: int = help_field("Linear warm-up steps.", default=500)
    max_steps: int = help_field("Optimizer steps to train for.", default=65536)
    label_smoothing: float = help_field("Label smoothing of the token cross-entropy (0 = off).", default=0.0)
    max_grad_norm: float = help_field("Gradient clipping norm (0 = no clipping).", default=1.0)
    grad_accum: int = help_field("Micro-batches accumulated per optimizer step.", default=1)
    temperature: float = help_field("Task sampling temperature T: p(task) ∝ (N_t/N)^(1/T).", default=10.0)
    group_by_length: bool = help_field(
        "Batch sentences of similar length (pools of 50 batches sorted by length, batches shuffled): "
        "same sentences per epoch, far less padding, so faster steps. Off by default (the papers' sampling).",
        default=False,
    )
    eval_every: int = help_field("Evaluate on the validation sets every N optimizer steps.", default=1000)
    checkpoint_every: int = help_field("Write checkpoints/last every N optimizer steps.", default=1000)
    log_every: int = help_field("Write a loss line to train.log/metrics.jsonl every N steps.", default=100)
    select_best_by: str = help_field("Metric that picks checkpoints/best: val_loss (the paper's) | avg_f1.", default="val_loss")
    eval_f1: bool = help_field(
        "Also compute validation F1 at each evaluation (decoding is slow); always on with select_best_by=avg_f1.",
        default=False,
    )
    max_val_examples: int | None = help_field("Use at most N validation sentences per task (speed); None = all.", default=None)
    mixed_precision: str = help_field("no | bf16 | fp16 (fp16 overflows in T5: prefer bf16).", default="no")
    skip_nonfinite: bool = help_field("Skip batches whose loss is NaN/inf instead of stopping the run.", default=False)
    output_dir: str | None = help_field("Run folder; None = runs/<method>-<tasks>-<fraction>-<timestamp>.", default=None)
    method_overrides: dict[str, Any] = help_field(
        "Method hyper-parameters passed to build_model, e.g. {reduction_factor = 4}.", default_factory=dict
    )
    adapt: dict[str, Any] | None = help_field(
        "Set by hl adapt: the trained run this one adds tasks to, and how (see hlcli.adapt). None = a run from scratch.",
        default=None,
    )

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            self.tasks = [t.strip() for t in self.tasks.split(",") if t.strip()]
        # Own data (NAME=FOLDER, hf:ORG/NAME, [tasks.NAME] tables): names stay in tasks, the rest moves to task_sources.
        self.tasks, self.task_sources = resolve_tasks(self.tasks, self.task_sources)
        if not self.tasks:
            raise UsageError("no tasks given", expected="--tasks atis,snips or tasks = [...] in the recipe")
        if len(set(self.tasks)) != len(self.tasks):
            raise UsageError(f"duplicate task in {self.tasks}")
        if not 0.0 < self.fraction <= 1.0:
            raise UsageError(f"fraction {self.fraction} out of range", expected="0 < fraction <= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"lr {self.lr} must be a positive number")
        if self.head_lr is not None and not (self.head_lr > 0 and math.isfinite(self.head_lr)):
            raise UsageError(f"head_lr {self.head_lr} must be a positive number")
        for name in ("batch_size", "eval_batch_size", "max_steps", "grad_accum", "eval_every", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name} = {value!r}", expected="a positive integer")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise UsageError(f"warmup_steps = {self.warmup_steps!r}", expected="an integer >= 0")
        if self.max_val_examples is not None and self.max_val_examples < 1:
            raise UsageError(f"max_val_examples = {self.max_val_examples!r}", expected="a positive integer or none")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UsageError(f"label_smoothing {self.label_smoothing} out of range", expected="0 <= value < 1")
        if self.max_grad_norm < 0:
            raise UsageError(f"max_grad_norm {self.max_grad_norm} must be >= 0")
        if self.temperature <= 0:
            raise UsageError(f"temperature {self.temperature} must be > 0")
        for name, choices in (
            ("schedule", SCHEDULES),
            ("select_best_by", SELECT_BEST_BY),
            ("mixed_precision", MIXED_PRECISION),
        ):
            if getattr(self, name) not in choices:
                raise UsageError(f"{name} = {getattr(self, name)!r}", expected=" | ".join(choices))
        if self.mixed_precision == "fp16":
            warnings.warn(
                "fp16 overflows in T5 (activations exceed 65504); prefer --mixed-precision bf16", stacklevel=2
            )
        if not isinstance(self.method_overrides, dict):
            raise UsageError("method_overrides must be a table of key = value")
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        if self.output_dir is not None:
            self.output_dir = str(self.output_dir)

    @property
    def compute_f1(self) -> bool:
        return self.eval_f1 or self.select_best_by == "avg_f1"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field that has a default, with that default (``tasks`` has none that is valid)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                out[f.name] = f.default_factory()  # type: ignore[misc]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | Path | None = None) -> TrainConfig:
        check_keys(data, source=source)
        return cls(**data)


def check_keys(data: dict[str, Any], *, source: str | Path | None = None) -> None:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in data:
        if key not in known:
            raise HLError(f"unknown setting {key!r}", path=source, expected="one of " + ", ".join(sorted(known)))


def fields_help() -> dict[str, str]:
    """Field name → help text (for docs and ``--help``)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(TrainConfig)}


def read_recipe(path: str | Path) -> dict[str, Any]:
    """Read a whole TOML recipe into a plain dict (including tables of other commands)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise HLError("recipe not found", path=path) from None
    except tomllib.TOMLDecodeError as error:
        raise HLError(f"not valid TOML: {error}", path=path) from None


def load_config(recipe: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults < recipe < ``overrides`` (CLI flags; ``None`` values are ignored).

    ``method_overrides`` from the flags are merged into the recipe's rather than replacing them.
    """
    data: dict[str, Any] = read_recipe(recipe) if recipe is not None else {}
    for section in OTHER_SECTIONS:
        data.pop(section, None)
    if recipe is not None:  # a recipe's own-data paths are relative to the recipe's folder
        data = recipe_tasks(data, recipe=recipe)
    check_keys(data, source=recipe)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key == "method_overrides":
            data["method_overrides"] = {**data.get("method_overrides", {}), **value}
        else:
            data[key] = value
    return TrainConfig.from_dict(data, source=recipe)


def save_config(config: TrainConfig, path: str | Path) -> None:
    from hlcli.io import write_json

    write_json(path, config.to_dict())


def read_config(path: str | Path) -> TrainConfig:
    """Read a run's ``config.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HLError("no config.json: not a run folder", path=path.parent) from None
    except json.JSONDecodeError as error:
        raise HLError(f"not valid JSON: {error}", path=path) from None
    return TrainConfig.from_dict(data, source=path)
