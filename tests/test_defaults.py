"""Defaults that fit the run: backbone-aware learning rates, a warm-up sized to the run (and a
warning when a set one is too long), a duration estimate; recipes that set these keep their values."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from hlcli import runs
from hlcli.config import TrainConfig, load_config
from hlcli.defaults import FORMER_DEFAULTS, default_warmup, resolve_defaults
from hlcli.methods import build_model
from hlcli.methods.base import TaskSpec
from hlcli.training import train
from hlcli.training.report import DurationEstimate, backbone_family, format_duration

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


def test_unset_settings_resolve_by_backbone_family_and_set_ones_are_kept():
    config = TrainConfig(tasks=["atis"], max_steps=300)
    notes, warned = resolve_defaults(config, family="encoder")
    assert (config.lr, config.head_lr, config.warmup_steps) == (1e-4, 3e-3, 18)  # 6 % of 300
    assert notes == ["defaults for an encoder backbone: lr 0.0001, head_lr 0.003, warmup_steps 18 (6% of 300 steps, at most 500)"]
    assert warned == []

    config = TrainConfig(tasks=["atis"])  # the papers' 65,536 steps: their 500-step warm-up, their lr
    resolve_defaults(config, family="t5")
    assert (config.lr, config.head_lr, config.warmup_steps) == (3e-4, None, 500)

    config = TrainConfig(tasks=["atis"], lr=5e-5, head_lr=1e-2, warmup_steps=7, max_steps=300)
    assert resolve_defaults(config, family="encoder") == ([], [])
    assert (config.lr, config.head_lr, config.warmup_steps) == (5e-5, 1e-2, 7)


def test_a_resumed_or_adapted_run_keeps_its_recorded_head_lr():
    # Before head_lr depended on the backbone, a recorded None meant "= lr".
    config = TrainConfig(tasks=["atis"], lr=1e-4, warmup_steps=10)
    resolve_defaults(config, family="encoder", resumed=True)
    assert config.head_lr is None


def test_a_warm_up_longer_than_a_fifth_of_the_run_is_warned_about_in_one_line():
    config = TrainConfig(tasks=["atis"], lr=1e-4, warmup_steps=500, max_steps=300)
    _, warned = resolve_defaults(config, family="encoder")
    assert warned == ["warmup_steps 500 is not shorter than max_steps 300: the learning rate peaks at 6.00e-05 instead of "
                      "1.00e-04; leave warmup_steps unset for 18 (6% of the run)"]  # fmt: skip
    config = TrainConfig(tasks=["atis"], lr=1e-4, warmup_steps=100, max_steps=300)
    assert resolve_defaults(config, family="encoder")[1] == [
        "warmup_steps 100 is 33% of max_steps 300: the learning rate reaches 1.00e-04 only at step 100; "
        "leave warmup_steps unset for 18 (6% of the run)"]  # fmt: skip
    config = TrainConfig(tasks=["atis"], warmup_steps=60, max_steps=300)  # 20 %: fine
    assert resolve_defaults(config, family="t5")[1] == []
    config = TrainConfig(tasks=["atis"], max_steps=3)  # the rule's own 1 step of 3 is not warned about
    assert resolve_defaults(config, family="t5") == (["defaults for a t5 backbone: lr 0.0003, warmup_steps 1 "
                                                      "(6% of 3 steps, at most 500)"], [])  # fmt: skip


@pytest.mark.parametrize(("steps", "warmup"), [(1, 1), (20, 2), (300, 18), (1000, 60), (8334, 500), (65536, 500)])
def test_default_warm_up_is_six_percent_at_most_500(steps, warmup):
    assert default_warmup(steps) == warmup


def test_backbone_family_follows_the_model_type_else_the_heads(tiny_t5, tiny_bert):
    tasks = [TaskSpec("t", ["x"])]
    t5 = build_model("hyperloader", backbone=tiny_t5, tasks=tasks, overrides={"reduction_factor": 4})
    bert = build_model("hyperloader", backbone=tiny_bert, tasks=tasks, overrides={"reduction_factor": 4})
    assert backbone_family(t5) == "t5" and not t5.head_parameters()
    assert backbone_family(bert) == "encoder" and bert.head_parameters()
    # A backbone of a type hlcli does not know (a new family): the per-task heads decide.
    for model in (t5, bert):
        model.backbone.config.model_type = "not-yet-known"
        assert model.backbone.config.model_type == "not-yet-known"
    assert backbone_family(bert) == "encoder"  # heads: what head_lr is for
    assert backbone_family(t5) == "t5"  # no heads


def test_every_repository_recipe_resolves_to_the_values_it_sets():
    """Recipes set lr and warm-up explicitly: whatever the backbone, their runs compute what they did."""
    for recipe in sorted((REPO / "recipes").glob("*.toml")):
        text = recipe.read_text()
        for family in ("t5", "encoder"):
            config = load_config(recipe)
            resolve_defaults(config, family=family)
            assert config.lr == float(re.search(r"^lr = (\S+)", text, re.M).group(1)), recipe
            assert config.warmup_steps == int(re.search(r"^warmup_steps = (\d+)", text, re.M).group(1)), recipe


def test_run_identity_treats_unset_and_the_former_defaults_alike():
    # hl compare leaves settings at their default out of a run's folder name (config_hash): a recipe
    # that sets lr = 3e-4 / warmup_steps = 500 keeps the folder names it had, and so does one that
    # leaves them unset.
    from hlcli.compare.plan import config_hash

    assert FORMER_DEFAULTS == {"lr": 3e-4, "warmup_steps": 500}
    unset = TrainConfig(tasks=["atis", "snips"])
    assert config_hash(unset) == config_hash(TrainConfig(tasks=["atis", "snips"], lr=3e-4, warmup_steps=500))
    assert config_hash(unset) != config_hash(TrainConfig(tasks=["atis", "snips"], lr=1e-4))


def test_a_run_records_its_resolved_settings_and_estimates_its_duration(tmp_path, tiny_t5, toy_tasks):
    said: list[str] = []
    # A real run (HyperLoader on conftest's tiny T5, the toy music corpus); lr left unset.
    config = TrainConfig(tasks=[toy_tasks("music")], model=tiny_t5, method_overrides={"reduction_factor": 4}, batch_size=4,
                         max_steps=25, warmup_steps=25, eval_every=100, checkpoint_every=100, log_every=5,
                         output_dir=str(tmp_path / "run"))  # fmt: skip
    train(config, log=said.append)
    recorded = json.loads((tmp_path / "run" / runs.CONFIG).read_text())
    assert (recorded["lr"], recorded["head_lr"], recorded["warmup_steps"]) == (3e-4, None, 25)
    log = (tmp_path / "run" / runs.TRAIN_LOG).read_text()
    assert "defaults for a t5 backbone: lr 0.0003" in log
    warning = "warning: warmup_steps 25 is not shorter than max_steps 25: the learning rate peaks at 3.00e-04"
    assert warning in log and any(line.startswith(warning) for line in said)
    # After 20 timed steps (the first is not timed): 25 - 21 = 4 steps remain.
    estimate = [line for line in said if line.startswith("estimate:")]
    assert len(estimate) == 1 and re.fullmatch(
        r"estimate: ≈ \d+ s for the remaining 4 of 25 steps at [\d.]+ (steps/s|s/step) \(validation and checkpoints not included\)",
        estimate[0]), estimate  # fmt: skip
    assert estimate[0] in log


def test_the_estimate_counts_only_the_steps_and_formats_long_runs():
    class Step:
        def __init__(self, step: int) -> None:
            self.step = step

    lines: list[str] = []
    estimate = DurationEstimate(max_steps=65536, report=lines.append, after=3)
    assert [r.step for r in estimate.timed(Step(s) for s in range(1, 6))] == [1, 2, 3, 4, 5]
    assert len(lines) == 1 and "for the remaining 65,532 of 65,536 steps" in lines[0]
    assert [format_duration(s) for s in (45, 725, 25500, 200000)] == ["45 s", "12 min 05 s", "7 h 05 min", "2 d 07 h"]


def test_requires_python_is_the_lowest_version_the_suite_runs_on():
    """config.py reads recipes with tomllib (Python 3.11+); pyproject says so and CI runs 3.11."""
    import tomllib

    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    claimed = SpecifierSet(project["requires-python"])
    assert "3.10" not in claimed and "3.11" in claimed
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in claimed
