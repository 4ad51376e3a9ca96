"""Reading a compare recipe and resolving it into runs (nothing is trained here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from hlcli.compare.facts import is_single_task, needs_decoder
from hlcli.compare.tune import TUNE_KEY, TuneSpec, check_tune_table, point_name, tune_spec
from hlcli.config import TrainConfig, check_keys, read_recipe
from hlcli.data.corpora import CORPORA, SPLITS, check_fraction
from hlcli.data.sources import recipe_tasks
from hlcli.defaults import FORMER_DEFAULTS
from hlcli.errors import HLError, UsageError, unknown_name

COMPARE_SECTION = "compare"  # listed in hlcli.config.OTHER_SECTIONS: `hl train` ignores it
COMPARE_KEYS = ("methods", "fractions", "split", "seeds", "overrides", TUNE_KEY)


@dataclass
class PlannedRun:
    """One training run of the comparison (or the reason it cannot run)."""

    method: str
    fraction: float
    tasks: list[str]
    config: TrainConfig | None
    run_dir: Path | None
    unavailable: str | None = None
    seed: int | None = None
    setting: dict[str, Any] | None = None  # the grid point (tuning runs) or the chosen one (final runs)
    tuning: bool = False
    identity: str | None = None  # config_hash when planned (training fills in config.task_sources)

    @property
    def label(self) -> str:
        from hlcli.compare.tune import describe

        scope = "+".join(self.tasks) if is_single_task(self.method) else "all tasks"
        seed = f", seed {self.seed}" if self.seed is not None else ""
        point = f", {'tuning ' if self.tuning else ''}{describe(self.setting)}" if self.setting else ""
        return f"{self.method} (fraction {self.fraction:g}, {scope}{point}{seed})"


@dataclass
class TunedMethod:
    """A method whose final runs wait for its tuning: what :func:`final_runs` needs to plan them."""

    spec: TuneSpec
    data: dict[str, Any]  # the method's resolved settings, tasks aside
    groups: list[list[str]]
    points: list[PlannedRun]


@dataclass
class ComparePlan:
    recipe: Path
    output_dir: Path
    methods: list[str]
    fractions: list[float]
    tasks: list[str]
    split: str
    runs: list[PlannedRun]
    model: str | None = None
    seeds: list[int] | None = None
    points: list[PlannedRun] = field(default_factory=list)  # tuning runs, scored on val
    tuned: dict[tuple[str, float], TunedMethod] = field(default_factory=dict)
    fixed: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)  # one-point grids


def read_compare_recipe(recipe: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(train settings, [compare] table)`` of a recipe, both checked for unknown keys."""
    data = dict(read_recipe(recipe))
    section = data.pop(COMPARE_SECTION, {})
    data = recipe_tasks(data, recipe=recipe)  # [tasks.NAME] tables: own data
    if not isinstance(section, dict):
        raise HLError(f"[{COMPARE_SECTION}] must be a table", path=recipe)
    check_keys(data, source=recipe)
    for key in section:
        if key not in COMPARE_KEYS:
            expected = "one of " + ", ".join(COMPARE_KEYS)
            raise HLError(f"unknown [{COMPARE_SECTION}] setting {key!r}", path=recipe, expected=expected)
    if not isinstance(section.get("overrides", {}), dict):
        raise HLError(f"[{COMPARE_SECTION}.overrides] must be a table of method tables", path=recipe)
    for method, overrides in section.get("overrides", {}).items():
        if not isinstance(overrides, dict):
            raise HLError(f"[{COMPARE_SECTION}.overrides.{method}] must be a table", path=recipe)
        check_keys(overrides, source=recipe)
    if TUNE_KEY in section:
        check_tune_table(section[TUNE_KEY], recipe)
    seeds = section.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds)):
        what = f"[{COMPARE_SECTION}] seeds must be a non-empty list of integers"
        raise HLError(what, path=recipe, expected="e.g. seeds = [1, 2, 3]")
    return data, section


def plan(
    *,
    recipe: str | Path,
    methods: Sequence[str] | None = None,
    fractions: Sequence[float] | None = None,
    tasks: Sequence[str] | None = None,
    data_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    model: str | None = None,
    max_steps: int | None = None,
    seeds: Sequence[int] | None = None,
    split: str | None = None,
) -> ComparePlan:
    """Resolve the recipe and the overrides into the list of runs (nothing is trained).

    Without seeds (flag or recipe) every run keeps the recipe's seed and its folder name, so
    comparisons started before seeds existed are found again. ``split`` replaces the recipe's.
    A method with a ``[compare.tune]`` grid gets its grid points in ``points`` and its final runs
    from :func:`final_runs` once a point is chosen (:mod:`hlcli.compare.tune`).
    """
    recipe = Path(recipe)
    settings, section = read_compare_recipe(recipe)
    tune = section.get(TUNE_KEY, {})
    overrides = section.get("overrides", {})
    methods = _methods(list(methods or section.get("methods") or []), {**overrides, **_tune_methods(tune)}, recipe)
    fractions, split, tasks, seeds = _selection(settings, section, fractions, split, tasks, seeds)

    base = {**settings, "tasks": tasks}
    # Flags win over the recipe, its per-method overrides included.
    given = (("data_dir", data_dir), ("model", model), ("max_steps", max_steps))
    flags = {k: str(v) if isinstance(v, Path) else v for k, v in given if v is not None}
    base.update(flags)
    out = Path(output_dir) if output_dir is not None else Path("compare") / recipe.stem
    backbone = base.get("model", TrainConfig.model)
    # Only looked up when it matters: reading a backbone's config needs the backbone at hand.
    encoder_only = any(needs_decoder(m) for m in methods) and _encoder_only(backbone)

    the_plan = ComparePlan(recipe, out, methods, fractions, tasks, split, [], model=backbone, seeds=seeds)
    for fraction in fractions:
        for method in methods:
            if needs_decoder(method) and encoder_only:
                the_plan.runs.append(PlannedRun(method, fraction, tasks, None, None, unavailable="n/a (needs decoder)"))
                continue
            data = {**base, **overrides.get(method, {}), **flags, "method": method, "fraction": fraction}
            _plan_method(the_plan, data, tune_spec(tune, method), flags)
    return the_plan


def _selection(settings: dict[str, Any], section: dict[str, Any], fractions, split, tasks, seeds) -> tuple:
    """The fractions, split, tasks and seeds compared: the flags', else the recipe's (checked)."""
    fractions = [float(f) for f in (fractions or section.get("fractions") or [settings.get("fraction", 1.0)])]
    for fraction in fractions:
        check_fraction(fraction)
    split = split or section.get("split", "test")
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    tasks = list(tasks or settings.get("tasks") or CORPORA)
    for task in tasks:
        if task not in CORPORA and task not in settings.get("task_sources", {}):
            raise unknown_name("task", task, list(CORPORA) + list(settings.get("task_sources", {})))
    seeds = list(seeds) if seeds else section.get("seeds")
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise UsageError(f"duplicate seed in {seeds}")
    return fractions, split, tasks, seeds


def _plan_method(the_plan: ComparePlan, data: dict[str, Any], spec: TuneSpec | None, flags: dict[str, Any]) -> None:
    """Add one method at one fraction (``data``: its settings) to ``the_plan``: its grid points
    when it is tuned, else its runs (once per seed; one per task for a single-task method)."""
    method, fraction, tasks = data["method"], data["fraction"], the_plan.tasks
    out, recipe = the_plan.output_dir, the_plan.recipe
    groups = [[task] for task in tasks] if is_single_task(method) else [tasks]
    if spec is not None and spec.tuned:
        points = _tuning_runs(spec, data, groups, flags, out, recipe)
        the_plan.points.extend(points)
        the_plan.tuned[method, fraction] = TunedMethod(spec, data, groups, points)
        return
    setting = spec.points()[0] if spec is not None else None
    if setting is not None:
        the_plan.fixed[method, fraction] = setting
    for seed in the_plan.seeds or [None]:
        for group in groups:
            the_plan.runs.append(_planned_run({**data, **(setting or {}), "tasks": group}, seed, out, recipe))


def _tuning_runs(
    spec: TuneSpec, data: dict[str, Any], groups: list[list[str]], flags: dict[str, Any], out: Path, recipe: Path
) -> list[PlannedRun]:
    """Every grid point's runs at the budget: the tuning seed, ``steps`` (``--max-steps`` wins)."""
    seed = spec.seed if spec.seed is not None else data.get("seed", TrainConfig.seed)
    budget = {} if spec.steps is None or "max_steps" in flags else {"max_steps": spec.steps}
    return [
        _planned_run({**data, **setting, **budget, "tasks": group}, seed, out, recipe, setting=setting, tuning=True)
        for setting in spec.points()
        for group in groups
    ]


def final_runs(the_plan: ComparePlan, chosen: dict[tuple[str, float], dict[str, Any]]) -> list[PlannedRun]:
    """The runs of each tuned method at its chosen point, over the seeds (as an untuned method's).

    A run with exactly a grid point's settings is that point's folder (trained once, scored twice).
    """
    planned = []
    for key, setting in chosen.items():
        tuned = the_plan.tuned[key]
        by_hash = {p.identity: p.run_dir for p in tuned.points}
        for seed in the_plan.seeds or [None]:
            for group in tuned.groups:
                data = {**tuned.data, **setting, "tasks": group}
                run = _planned_run(data, seed, the_plan.output_dir, the_plan.recipe, setting=setting)
                assert run.config is not None
                reused = by_hash.get(run.identity)
                if reused is not None:
                    run.run_dir, run.config.output_dir = reused, str(reused)
                planned.append(run)
    return planned


def _tune_methods(tune: dict[str, Any]) -> dict[str, Any]:
    """The method tables of ``[compare.tune]`` (their names are checked like the overrides')."""
    return {key: value for key, value in tune.items() if isinstance(value, dict)}


def _methods(methods: list[str], overrides: dict[str, Any], recipe: Path) -> list[str]:
    from hlcli.methods import known_methods

    if not methods:
        expected = f"methods = [...] in [{COMPARE_SECTION}] or --methods"
        raise UsageError("no methods to compare", path=recipe, expected=expected)
    known = known_methods()
    for method in [*methods, *overrides]:
        if method not in known:
            raise unknown_name("method", method, known)
    if len(set(methods)) != len(methods):
        raise UsageError(f"duplicate method in {methods}")
    return methods


def _planned_run(
    data: dict[str, Any],
    seed: int | None,
    out: Path,
    recipe: Path,
    *,
    setting: dict[str, Any] | None = None,
    tuning: bool = False,
) -> PlannedRun:
    """``<method>-<fraction>[-<task>][-seed<n>]-<hash>``: a seed differing from the recipe's is named.

    A tuned method's runs name their point: ``...-<task>-tune-lr3e-4-seed42-<hash>`` for a grid
    point (its seed always named), ``...-<task>-lr3e-4[-seed<n>]-<hash>`` for a final run.
    """
    data.pop("output_dir", None)
    base_seed = data.get("seed", TrainConfig.seed)
    if seed is not None:
        data["seed"] = seed
    config = TrainConfig.from_dict(data, source=recipe)
    method, group = config.method, config.tasks
    name = f"{method}-{config.fraction:g}" + (f"-{group[0]}" if is_single_task(method) else "")
    if tuning:
        name += "-tune"
    if setting:
        name += f"-{point_name(setting)}"
    if seed is not None and (seed != base_seed or tuning):
        name += f"-seed{seed}"
    identity = config_hash(config)
    config.output_dir = str(out / "runs" / f"{name}-{identity}")
    return PlannedRun(
        method, config.fraction, list(group), config, Path(config.output_dir),
        seed=config.seed if seed is not None else None, setting=setting, tuning=tuning, identity=identity,
    )


def config_hash(config: TrainConfig) -> str:
    """8 hex digits identifying what a run computes (not where it lives or reads its data).

    Settings left at their default are not part of the identity, so a later hlcli that adds a
    setting (with a default that computes what the old code did) still finds the runs it made.
    Nor are the backbone-aware settings at the fixed default they had before (lr 3e-4, warm-up
    500: FORMER_DEFAULTS): a recipe setting them explicitly keeps its run folders.
    """
    defaults = TrainConfig.defaults()
    identity = {
        k: v
        for k, v in config.to_dict().items()
        if k not in ("output_dir", "data_dir")
        and (k not in defaults or v not in (defaults[k], FORMER_DEFAULTS.get(k, defaults[k])))
    }
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:8]


def _encoder_only(model: str) -> bool:
    from hlcli.backbones import T5_MODEL_TYPES, load_backbone_config

    return load_backbone_config(model).model_type not in T5_MODEL_TYPES
