"""Tuning each method on validation before it is compared: a recipe's ``[compare.tune]`` table.

::

    [compare.tune]
    lr = [3e-5, 1e-4, 3e-4]        # a grid: any TrainConfig setting with a list of values
    steps = 2000                    # the budget of each grid point (default: the method's max_steps)
    seed = 42                       # the seed of each grid point (default: the recipe's seed)

    [compare.tune.unipelt]          # one method's own grid and budget (replace the keys above)
    lr = [1e-4, 3e-4, 1e-3]

Every point of a method's grid is trained once (``<method>-<fraction>[-<task>]-tune-<point>-seed<n>-<hash>``)
and scored on the validation split; the point with the highest average validation F1 over the
method's tasks is that method's setting, trained and scored over the recipe's seeds like an
untuned method. An exact tie goes to the point listed first (the grid's order: the product of the
keys' lists, the first key varying slowest). A one-point grid trains nothing: its setting is used
as given ("fixed"). A final run whose settings equal a grid point's (same seed, same steps) is
that point's run folder, scored on the final split too, not trained again.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hlcli.errors import HLError

TUNE_KEY = "tune"
BUDGET_KEYS = ("steps", "seed")
# What is compared (or where), never how a method is trained: not tunable.
NOT_TUNABLE = (
    "tasks", "method", "model", "data_dir", "task_sources", "fraction", "seed", "max_steps", "output_dir", "adapt",
    "method_overrides",
)
TUNE_SPLIT = "val"
TIE_DECIMALS = 12  # scores equal to 12 decimals are a tie (summation order aside, they are equal)
EDGE_MIN_VALUES = 3  # a two-value grid is a choice between two settings, not a search with an inside


@dataclass(frozen=True)
class TuneSpec:
    """One method's grid (setting → values, in the recipe's order) and its budget."""

    grid: dict[str, tuple[Any, ...]]
    steps: int | None = None
    seed: int | None = None

    def points(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]

    @property
    def tuned(self) -> bool:
        return len(self.points()) > 1

    def describe(self) -> str:
        """``lr 3e-5 | 1e-4 | 3e-4; head_lr 1e-3 | 3e-3``."""
        return "; ".join(f"{key} " + " | ".join(format_value(v) for v in values) for key, values in self.grid.items())


def check_tune_table(table: Any, recipe: Path) -> None:
    """Reject a malformed ``[compare.tune]`` table with the file named (method names are checked with the methods)."""
    where = "[compare.tune]"
    if not isinstance(table, dict):
        raise HLError(f"{where} must be a table", path=recipe)
    for key, value in table.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict):
                    raise HLError(f"[compare.tune.{key}.{inner}]: a method's grid holds no further tables", path=recipe)
                _check_entry(inner, inner_value, recipe, f"[compare.tune.{key}]")
        else:
            _check_entry(key, value, recipe, where)


def _check_entry(key: str, value: Any, recipe: Path, where: str) -> None:
    from hlcli.config import check_keys

    if key == "steps":
        if type(value) is not int or value < 1:
            expected = "a positive integer: the optimizer steps of each grid point"
            raise HLError(f"{where} steps = {value!r}", path=recipe, expected=expected)
        return
    if key == "seed":
        if type(value) is not int:
            raise HLError(f"{where} seed = {value!r}", path=recipe, expected="an integer")
        return
    if key in NOT_TUNABLE:
        expected = "a training setting such as lr or head_lr; what is compared is set outside the grid"
        raise HLError(f"{where} cannot tune {key!r}", path=recipe, expected=expected)
    check_keys({key: value}, source=recipe)
    if not isinstance(value, list) or not value:
        expected = f"a non-empty list, e.g. {key} = [3e-5, 1e-4, 3e-4]"
        raise HLError(f"{where} {key} = {value!r} is not a grid", path=recipe, expected=expected)
    if any(isinstance(v, (list, dict)) for v in value) or len({repr(v) for v in value}) != len(value):
        raise HLError(f"{where} {key} = {value!r}", path=recipe, expected="a list of distinct single values")


def tune_spec(table: dict[str, Any], method: str) -> TuneSpec | None:
    """The grid and budget of ``method``: the table's own keys, replaced key by key by ``[compare.tune.<method>]``."""
    own = table.get(method, {})
    common = {k: v for k, v in table.items() if not isinstance(v, dict)}
    merged = {**common, **own}
    grid = {k: tuple(v) for k, v in merged.items() if k not in BUDGET_KEYS}
    if not grid:
        return None
    return TuneSpec(grid, merged.get("steps"), merged.get("seed"))


def format_value(value: Any) -> str:
    """Short, stable text of a setting's value: 0.0003 → ``3e-4``, 0.1 → ``0.1``, True → ``true``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
            mantissa, exponent = f"{value:.6e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:g}"
    return str(value)


def point_name(setting: dict[str, Any]) -> str:
    """A grid point in a folder name: ``lr3e-4`` or ``lr3e-4-head_lr3e-3``."""
    return "-".join(f"{key}{format_value(value)}".replace("/", "_").replace(" ", "_") for key, value in setting.items())


def describe(setting: dict[str, Any]) -> str:
    """A grid point as the table prints it: ``lr 3e-4, head_lr 3e-3``."""
    return ", ".join(f"{key} {format_value(value)}" for key, value in setting.items())


@dataclass
class TuningPoint:
    """One grid point of one method at one fraction: its runs (one per task for single-task methods) and scores."""

    method: str
    fraction: float
    setting: dict[str, Any]
    seed: int
    steps: int
    tasks: list[str]
    run_dirs: list[Path]
    scores: dict[str, float] = field(default_factory=dict)  # task → validation F1
    chosen: bool = False
    diverged: str | None = None  # the error of a run of this point whose training diverged
    at_edge: tuple[str, ...] = ()  # chosen at the end of a numeric grid: "lr 3e-4 is the grid's highest"

    @property
    def val_avg_f1(self) -> float | None:
        """The mean validation F1 over the method's tasks; None until every task is scored."""
        if any(task not in self.scores for task in self.tasks):
            return None
        return sum(self.scores[t] for t in self.tasks) / len(self.tasks)

    def score_text(self) -> str:
        """The average validation F1 as tables print it: ``0.7722``, ``—`` (not scored), ``diverged``."""
        average = self.val_avg_f1
        return "diverged" if self.diverged else "—" if average is None else f"{average:.4f}"

    def to_json(self) -> dict[str, Any]:
        average = self.val_avg_f1
        return {
            "method": self.method, "fraction": self.fraction, "setting": dict(self.setting),
            "point": describe(self.setting),
            "seed": self.seed, "steps": self.steps, "val_avg_f1": average, "val_f1": dict(self.scores),
            "chosen": self.chosen, "diverged": self.diverged, "at_edge": list(self.at_edge),
            "run_dirs": [str(d) for d in self.run_dirs],
        }


def choose(points: list[TuningPoint]) -> TuningPoint | None:
    """The point with the highest average validation F1 (an exact tie: the one listed first),
    diverged points left out; None while any other point is unscored, so no choice is ever made
    from part of a grid, and None when every point diverged."""
    candidates = [p for p in points if not p.diverged]
    averages = [p.val_avg_f1 for p in candidates]
    if not candidates or any(a is None or math.isnan(a) for a in averages):
        return None
    best = max(range(len(candidates)), key=lambda i: (round(averages[i], TIE_DECIMALS), -i))  # type: ignore[arg-type]
    return candidates[best]


def grid_edges(spec: TuneSpec, setting: dict[str, Any]) -> tuple[str, ...]:
    """Where ``setting`` sits at the end of a numeric grid (three or more numbers): the best value
    may then lie beyond the grid, which a search over a wider range would show; e.g.
    ``("lr 3e-4 is the grid's highest",)``. Empty where every numeric value is inside its grid."""
    edges = []
    for key, values in spec.grid.items():
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) < EDGE_MIN_VALUES or len(numbers) != len(values) or key not in setting:
            continue
        if setting[key] == max(numbers):
            edges.append(f"{key} {format_value(setting[key])} is the grid's highest")
        elif setting[key] == min(numbers):
            edges.append(f"{key} {format_value(setting[key])} is the grid's lowest")
    return tuple(edges)
