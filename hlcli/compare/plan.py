"""Reading a compare recipe and resolving it into runs (nothing is trained here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hlcli.compare.facts import is_single_task, needs_decoder
from hlcli.config import TrainConfig, check_keys, read_recipe
from hlcli.data.corpora import CORPORA, SPLITS
from hlcli.data.sources import recipe_tasks
from hlcli.errors import HLError, UsageError, unknown_name

COMPARE_SECTION = "compare"  # listed in hlcli.config.OTHER_SECTIONS: `hl train` ignores it
COMPARE_KEYS = ("methods", "fractions", "split", "seeds", "overrides")


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

    @property
    def label(self) -> str:
        scope = "+".join(self.tasks) if is_single_task(self.method) else "all tasks"
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"{self.method} (fraction {self.fraction:g}, {scope}{seed})"


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
            raise HLError(f"unknown [{COMPARE_SECTION}] setting {key!r}", path=recipe, expected="one of " + ", ".join(COMPARE_KEYS))
    if not isinstance(section.get("overrides", {}), dict):
        raise HLError(f"[{COMPARE_SECTION}.overrides] must be a table of method tables", path=recipe)
    for method, overrides in section.get("overrides", {}).items():
        if not isinstance(overrides, dict):
            raise HLError(f"[{COMPARE_SECTION}.overrides.{method}] must be a table", path=recipe)
        check_keys(overrides, source=recipe)
    seeds = section.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds)):
        raise HLError(f"[{COMPARE_SECTION}] seeds must be a non-empty list of integers", path=recipe, expected="e.g. seeds = [1, 2, 3]")
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
) -> ComparePlan:
    """Resolve the recipe and the overrides into the list of runs (nothing is trained).

    Without seeds (flag or recipe) every run keeps the recipe's seed and its folder name, so
    comparisons started before seeds existed are found again.
    """
    recipe = Path(recipe)
    settings, section = read_compare_recipe(recipe)
    methods = _methods(list(methods or section.get("methods") or []), section.get("overrides", {}), recipe)
    fractions = [float(f) for f in (fractions or section.get("fractions") or [settings.get("fraction", 1.0)])]
    for fraction in fractions:
        if not 0.0 < fraction <= 1.0:
            raise UsageError(f"fraction {fraction} out of range", expected="0 < fraction <= 1")
    split = section.get("split", "test")
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    tasks = list(tasks or settings.get("tasks") or CORPORA)
    for task in tasks:
        if task not in CORPORA and task not in settings.get("task_sources", {}):
            raise unknown_name("task", task, list(CORPORA) + list(settings.get("task_sources", {})))
    seeds = list(seeds) if seeds else section.get("seeds")
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise UsageError(f"duplicate seed in {seeds}")

    base = {**settings, "tasks": tasks}
    # Flags win over the recipe, its per-method overrides included.
    flags = {k: str(v) if isinstance(v, Path) else v for k, v in (("data_dir", data_dir), ("model", model), ("max_steps", max_steps)) if v is not None}
    base.update(flags)
    out = Path(output_dir) if output_dir is not None else Path("compare") / recipe.stem
    backbone = base.get("model", TrainConfig.model)
    # Only looked up when it matters: reading a backbone's config needs the backbone at hand.
    encoder_only = any(needs_decoder(m) for m in methods) and _encoder_only(backbone)
    overrides = section.get("overrides", {})

    planned: list[PlannedRun] = []
    for fraction in fractions:
        for method in methods:
            if needs_decoder(method) and encoder_only:
                planned.append(PlannedRun(method, fraction, tasks, None, None, unavailable="n/a (needs decoder)"))
                continue
            groups = [[task] for task in tasks] if is_single_task(method) else [tasks]
            for seed in seeds or [None]:
                for group in groups:
                    data = {**base, **overrides.get(method, {}), **flags, "method": method, "fraction": fraction, "tasks": group}
                    planned.append(_planned_run(data, seed, out, recipe))
    return ComparePlan(recipe, out, methods, fractions, tasks, split, planned, model=backbone, seeds=seeds)


def _methods(methods: list[str], overrides: dict[str, Any], recipe: Path) -> list[str]:
    from hlcli.methods import known_methods

    if not methods:
        raise UsageError("no methods to compare", path=recipe, expected=f"methods = [...] in [{COMPARE_SECTION}] or --methods")
    known = known_methods()
    for method in [*methods, *overrides]:
        if method not in known:
            raise unknown_name("method", method, known)
    if len(set(methods)) != len(methods):
        raise UsageError(f"duplicate method in {methods}")
    return methods


def _planned_run(data: dict[str, Any], seed: int | None, out: Path, recipe: Path) -> PlannedRun:
    """``<method>-<fraction>[-<task>][-seed<n>]-<hash>``: a seed differing from the recipe's is named."""
    data.pop("output_dir", None)
    base_seed = data.get("seed", TrainConfig.seed)
    if seed is not None:
        data["seed"] = seed
    config = TrainConfig.from_dict(data, source=recipe)
    method, group = config.method, config.tasks
    name = f"{method}-{config.fraction:g}" + (f"-{group[0]}" if is_single_task(method) else "")
    if seed is not None and seed != base_seed:
        name += f"-seed{seed}"
    config.output_dir = str(out / "runs" / f"{name}-{config_hash(config)}")
    return PlannedRun(method, config.fraction, list(group), config, Path(config.output_dir), seed=config.seed if seed is not None else None)


def config_hash(config: TrainConfig) -> str:
    """8 hex digits identifying what a run computes (not where it lives or reads its data).

    Settings left at their default are not part of the identity, so a later hlcli that adds a
    setting (with a default that computes what the old code did) still finds the runs it made.
    """
    defaults = TrainConfig.defaults()
    identity = {
        k: v
        for k, v in config.to_dict().items()
        if k not in ("output_dir", "data_dir") and (k not in defaults or v != defaults[k])
    }
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:8]


def _encoder_only(model: str) -> bool:
    from hlcli.backbones import load_backbone_config
    from hlcli.methods.common import T5_MODEL_TYPES

    return load_backbone_config(model).model_type not in T5_MODEL_TYPES
