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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hlcli.data.corpora import OTHER_TASKS, check_fraction, merge_fractions, task_fraction
from hlcli.data.sources import recipe_tasks, resolve_tasks
from hlcli.errors import HLError, UsageError
from hlcli.fields import help_field

SCHEDULES = ("constant", "linear")
SELECT_BEST_BY = ("val_loss", "avg_f1")
# How a batch's token losses make the training loss (hlcli.training.loop: with grad_accum the
# step's gradient is that of the summed micro-batch sums); "sum" is the authors' label_smoothed_nll_loss.
LOSS_REDUCTIONS = ("mean", "sum")
# Which checkpoint a run folder stands for in hl evaluate / compare / tag / export (hlcli.runs).
SELECT_CHECKPOINT = ("best", "last")
MIXED_PRECISION = ("no", "bf16", "fp16")
REPORT_TO = ("tensorboard",)  # accelerate's trackers that hl supports (None: no tracker)
# Recipe tables that belong to other commands (``[compare]`` is read by ``hl compare``).
OTHER_SECTIONS = ("compare",)
POSITIVE_INTS = (
    "batch_size", "eval_batch_size", "max_steps", "grad_accum", "eval_every", "checkpoint_every", "log_every"
)  # fmt: skip


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
    fraction: float | dict[str, float] = help_field(
        "Fraction of each training set used (0 < f <= 1); low-resource runs use 0.1. Per task: "
        "--fraction 0.1,mine=1.0 (a bare number is for the tasks not named), fraction = {atis = 0.1, mine = 1.0} "
        "or fraction = F in a [tasks.NAME] table of the recipe; val shrinks alike, test never.",
        default=1.0,
    )
    seed: int = help_field("Seed for the data fraction, model init, sampler and dropout.", default=42)
    lr: float | None = help_field(
        "Peak learning rate of AdamW; unset = the backbone's default (3e-4 for T5, 1e-4 for encoders such as minilm).",
        default=None,
    )
    head_lr: float | None = help_field(
        "Learning rate of per-task output heads (encoder backbones such as minilm); unset = 3e-3 on encoders.",
        default=None,
    )
    batch_size: int = help_field("Sentences per batch (each batch holds one task).", default=32)
    eval_batch_size: int = help_field("Sentences per batch when evaluating/predicting.", default=64)
    schedule: str = help_field(
        "Learning-rate schedule after warm-up: constant | linear (decay to 0).", default="linear"
    )
    warmup_steps: int | None = help_field("Linear warm-up steps; unset = 6 % of max_steps, at most 500.", default=None)
    max_steps: int = help_field("Optimizer steps to train for.", default=65536)
    label_smoothing: float = help_field("Label smoothing of the token cross-entropy (0 = off).", default=0.0)
    loss_reduction: str = help_field(
        "mean | sum of the token losses: mean over a batch's target tokens (labelled words on encoders), or "
        "their sum (the authors' released code; train.log then shows sums); with grad_accum, sum = one gradient of "
        "every micro-batch's tokens.",
        default="mean",
    )
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
    select_best_by: str = help_field(
        "Metric that picks checkpoints/best: val_loss (the paper's) | avg_f1.", default="val_loss"
    )
    select_checkpoint: str = help_field(
        "Which checkpoint hl evaluate / compare / tag / export use for this run folder: best (checkpoints/best, "
        "else last) | last (checkpoints/last, the final model, as the authors' runs were scored).",
        default="best",
    )
    eval_f1: bool = help_field(
        "Also compute validation F1 at each evaluation (decoding is slow); always on with select_best_by=avg_f1.",
        default=False,
    )
    max_val_examples: int | None = help_field(
        "Use at most N validation sentences per task (speed); None = all.", default=None
    )
    mixed_precision: str = help_field("no | bf16 | fp16 (fp16 overflows in T5: prefer bf16).", default="no")
    report_to: str | None = help_field(
        "Also log the scalars of metrics.jsonl to: tensorboard (RUN/tensorboard/; "
        "needs pip install 'hlcli[tensorboard]').",
        default=None,
    )
    skip_nonfinite: bool = help_field("Skip batches whose loss is NaN/inf instead of stopping the run.", default=False)
    output_dir: str | None = help_field(
        "Run folder; None = runs/<method>-<tasks>-<fraction>-<timestamp>.", default=None
    )
    method_overrides: dict[str, Any] = help_field(
        "Method hyper-parameters passed to build_model, e.g. {reduction_factor = 4}.", default_factory=dict
    )
    adapt: dict[str, Any] | None = help_field(
        "Set by hl adapt: the trained run this one adds tasks to, and how (see hlcli.adapt). "
        "None = a run from scratch.",
        default=None,
    )

    def __post_init__(self) -> None:
        for name, value in check_types(vars(self)).items():  # also on direct construction, not only recipes
            setattr(self, name, value)
        if isinstance(self.tasks, str):
            self.tasks = [t.strip() for t in self.tasks.split(",") if t.strip()]
        # Own data (NAME=FOLDER, hf:ORG/NAME, [tasks.NAME] tables): names stay in tasks, the rest moves to task_sources.
        self.tasks, self.task_sources = resolve_tasks(self.tasks, self.task_sources)
        if not self.tasks:
            raise UsageError("no tasks given", expected="--tasks atis,snips or tasks = [...] in the recipe")
        if len(set(self.tasks)) != len(self.tasks):
            raise UsageError(f"duplicate task in {self.tasks}")
        self.fraction = normalize_fraction(self.fraction, self.tasks)
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"lr {self.lr} must be a positive number")
        if self.head_lr is not None and not (self.head_lr > 0 and math.isfinite(self.head_lr)):
            raise UsageError(f"head_lr {self.head_lr} must be a positive number")
        for name in POSITIVE_INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name} = {value!r}", expected="a positive integer")
        if self.warmup_steps is not None and (not isinstance(self.warmup_steps, int) or self.warmup_steps < 0):
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
            ("loss_reduction", LOSS_REDUCTIONS),
            ("select_checkpoint", SELECT_CHECKPOINT),
            ("mixed_precision", MIXED_PRECISION),
        ):
            if getattr(self, name) not in choices:
                raise UsageError(f"{name} = {getattr(self, name)!r}", expected=" | ".join(choices))
        if self.report_to is not None and self.report_to not in REPORT_TO:
            raise UsageError(f"report_to = {self.report_to!r}", expected=" | ".join(REPORT_TO))
        if self.mixed_precision == "fp16":
            warnings.warn(
                "fp16 overflows in T5 (activations exceed 65504); prefer --mixed-precision bf16", stacklevel=2
            )
        if not isinstance(self.method_overrides, dict):
            raise UsageError("method_overrides must be a table of key = value")

    @property
    def compute_f1(self) -> bool:
        return self.eval_f1 or self.select_best_by == "avg_f1"

    def task_fraction(self, task: str) -> float:
        """The fraction of ``task``'s training (and validation) set this run uses."""
        return task_fraction(self.fraction, task)

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
        check_types(data, source=source)
        return cls(**data)


def check_keys(data: dict[str, Any], *, source: str | Path | None = None) -> None:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in data:
        if key not in known:
            raise HLError(f"unknown setting {key!r}", path=source, expected="one of " + ", ".join(sorted(known)))


# -- per-task fractions ------------------------------------------------------------------------------
FRACTION_FORMS = "a number 0 < f <= 1, or TASK=F pairs with an optional bare default, e.g. 0.1 or 0.1,mine=1.0"


def parse_fraction(text: str) -> float | dict[str, float]:
    """``--fraction``: ``"0.1"`` → 0.1; ``"0.1,mine=1.0"`` → ``{"*": 0.1, "mine": 1.0}``."""
    table: dict[str, float] = {}
    for item in (part.strip() for part in str(text).split(",")):
        name, sep, value = item.rpartition("=")
        name = name.strip() if sep else OTHER_TASKS
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--fraction {text!r}", expected=FRACTION_FORMS) from None
        if not name or name in table:
            problem = "empty task name" if not name else f"{name} given twice"
            raise UsageError(f"--fraction {text!r}: {problem}", expected=FRACTION_FORMS)
        table[name] = number
    return table[OTHER_TASKS] if list(table) == [OTHER_TASKS] else table


def normalize_fraction(value: Any, tasks: list[str]) -> float | dict[str, float]:
    """A number, or a table naming every task (tasks it does not name: its ``"*"``, else 1.0).

    A table whose tasks all get the same fraction becomes that number: same data, same config.
    Names of tasks not in ``tasks`` are dropped (a run made by ``hl adapt`` inherits its base's
    table); :func:`load_config` refuses them where a user typed them.
    """
    if isinstance(value, dict):
        other = value.get(OTHER_TASKS, 1.0)
        table = {task: value.get(task, other) for task in tasks}
        for task, fraction in table.items():
            check_fraction(fraction, f"fraction of task {task!r}")
        if len(set(table.values())) > 1:
            return table
        value = next(iter(table.values()), other)
    check_fraction(value)
    return value


# -- value types, from the field annotations: one check for every setting, present and future -------------
_TYPE_WORDS = {
    bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table", list: "a list"
}  # fmt: skip


def check_types(data: dict[str, Any], *, source: str | Path | None = None) -> dict[str, Any]:
    """Refuse a setting whose value has the wrong type for its field, in one line naming the key and
    the type (``lr = '3e-4' (expected a number)``), before any check that would trip over it.

    Returns the values to convert: a path object given for a text field becomes its text. ``tasks``
    is checked where it is read (:func:`hlcli.data.sources.resolve_tasks`: a list, a comma list or tables).
    """
    import os
    import typing

    hints = typing.get_type_hints(TrainConfig)
    converted: dict[str, Any] = {}
    for name, value in data.items():
        if name == "tasks" or name not in hints:
            continue
        accepted = _accepted_types(hints[name])
        if accepted is None or _has_type(value, accepted):
            continue
        if str in accepted and isinstance(value, os.PathLike):
            converted[name] = os.fspath(value)
            continue
        words = " or ".join(dict.fromkeys(_TYPE_WORDS[t] for t in accepted if t in _TYPE_WORDS))
        raise UsageError(f"{name} = {value!r}", path=source, expected=words)
    return converted


def _accepted_types(hint: Any) -> tuple[type, ...] | None:
    """``float | None`` → (float, NoneType); ``dict[str, Any]`` → (dict,); None where not checkable (Any)."""
    import types
    import typing

    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    accepted = []
    for member in members:
        base = typing.get_origin(member) or member
        if not isinstance(base, type) or base is object:
            return None
        accepted.append(base)
    return tuple(accepted)


def _has_type(value: Any, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, not to a recipe
        return bool in accepted
    if isinstance(value, int) and float in accepted:  # lr = 1 is a number
        return True
    return isinstance(value, accepted)


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
    except UnicodeDecodeError as error:
        raise HLError(
            f"not UTF-8 text: undecodable byte at offset {error.start}", path=path, expected="a UTF-8 TOML file"
        ) from None


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
        elif key == "fraction":  # --fraction mine=1.0 keeps the recipe's fractions of the other tasks
            data["fraction"] = merge_fractions(data.get("fraction"), value)
        else:
            data[key] = value
    config = TrainConfig.from_dict(data, source=recipe)
    named = set(data["fraction"]) - {OTHER_TASKS} if isinstance(data.get("fraction"), dict) else set()
    if named - set(config.tasks):
        raise UsageError(f"fraction given for task {sorted(named - set(config.tasks))[0]!r}, which is not trained",
                         path=recipe, expected=f"tasks among {', '.join(config.tasks)}")
    return config


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
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HLError(f"not valid JSON: {error}", path=path) from None
    return TrainConfig.from_dict(data, source=path)
