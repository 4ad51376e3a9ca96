"""Module revisions: a run records the revision of its method's modules, and ``hl compare`` never
reuses, resumes or tables a run trained with other modules (its folder name, from the config hash,
is the same: issue 18 changed modules, not configs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _cli import invoke
from hlcli.methods import ModuleRevision, method_entry, register_method

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread


def test_the_registry_states_which_methods_changed_on_which_backbones():
    # Issue 18: projector init/eps and gelu_new in HyperLoader's modules; unipelt shares them on T5 only.
    for method in ("hyperloader", "hyperformer", "lora-only", "static"):
        assert method_entry(method).module_revision("t5") == method_entry(method).module_revision("bert") == 2
    assert (method_entry("unipelt").module_revision("t5"), method_entry("unipelt").module_revision("bert")) == (2, 1)
    for method in ("hyperdecoder", "full-finetune"):
        assert method_entry(method).module_revision("t5") == method_entry(method).module_revision("bert") == 1
    with pytest.raises(ValueError, match="numbered 2, 3"):
        register_method("x-test", config_cls=method_entry("static").config_cls, build=lambda *a: None,
                        revisions=[ModuleRevision(3, "skips 2")])  # fmt: skip


def _checkpoints(run: Path) -> list[Path]:
    return sorted(p for p in (run / "checkpoints").iterdir() if (p / "config.json").is_file())


def _as_before_revisions(run: Path) -> None:
    """Make ``run`` look trained before revisions were recorded (revision 1: the old modules)."""
    for checkpoint in _checkpoints(run):
        config = json.loads((checkpoint / "config.json").read_text())
        config.pop("module_revision")
        (checkpoint / "config.json").write_text(json.dumps(config))


def _revisions(run: Path) -> list[int]:
    return [json.loads((c / "config.json").read_text()).get("module_revision", 1) for c in _checkpoints(run)]


def test_a_run_records_its_revision_and_a_resume_keeps_an_older_one(tmp_path, tiny_run, toy_tasks):
    run = tmp_path / "run"
    trained = invoke("train", "--tasks", toy_tasks("flights"), *tiny_run, "--max-steps", 2, "--output-dir", run)
    assert trained.exit_code == 0, trained.output
    assert _revisions(run) == [2, 2]  # best, last

    _as_before_revisions(run)
    scored = invoke("evaluate", run, "--split", "val")  # an old run still loads and scores, and says so
    assert scored.exit_code == 0, scored.output
    assert "was trained with hyperloader module revision 1; this hlcli runs it with revision 2" in scored.stderr

    # Resumed with the new modules, it is still not a revision-2 run: its new checkpoints say 1.
    resumed = invoke("train", "--resume", run, "--max-steps", 4, "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    assert _revisions(run) == [1, 1]


RECIPE = """\
tasks = ["{spec}"]
max_steps = 2
batch_size = 8
lr = 3e-3
warmup_steps = 1
eval_every = 2
checkpoint_every = 2

[compare]
methods = ["hyperloader", "full-finetune"]
split = "val"
"""


def test_compare_trains_a_changed_methods_old_run_again_and_keeps_the_old_one_aside(tmp_path, tiny_t5, toy_tasks):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.format(spec=toy_tasks("flights")), encoding="utf-8")
    out = tmp_path / "cmp"
    args = ["compare", "--recipe", recipe, "--model", tiny_t5, "--output-dir", out]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    hyperloader, finetune = sorted((out / "runs").iterdir(), key=lambda p: not p.name.startswith("hyperloader"))
    for run in (hyperloader, finetune):
        _as_before_revisions(run)  # both made before revisions were recorded; only hyperloader's modules changed
    old_eval = (hyperloader / "eval.json").read_text()

    planned = invoke(*args, "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert "to train again (module revision 1 → 2)" in planned.stdout and "finished" in planned.stdout

    collected = invoke(*args, "--collect-only")
    assert collected.exit_code == 0, collected.output
    assert "0 trained, 1 skipped (finished), 1 missing" in collected.stdout  # the old hyperloader run is not tabled
    assert "trained with hyperloader module revision 1, this hlcli's is 2; left out" in collected.stderr
    assert hyperloader.is_dir()  # --collect-only moves nothing

    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "1 trained (1 again: made with an earlier module revision, kept in superseded/), 1 skipped" in again.stdout
    aside = out / "superseded" / f"{hyperloader.name}-rev1"
    assert (aside / "eval.json").read_text() == old_eval  # the old run, untouched, beside the comparison
    assert _revisions(aside) == [1, 1] and _revisions(hyperloader) == [2, 2]  # retrained under its own name
    assert _revisions(finetune) == [1, 1]  # full-finetune's modules did not change: reused as it was
    rows = json.loads((out / "results.json").read_text())
    assert sorted(Path(r["run_dir"]).name for r in rows) == sorted([hyperloader.name, finetune.name])

    # Without a recipe, the folder's runs are tabled as they are, with a warning for an old one.
    listed = invoke("compare", "--runs-dir", out, "--split", "val")
    assert listed.exit_code == 0, listed.output
    assert f"{aside}: trained with hyperloader module revision 1, this hlcli's is 2" in listed.stderr
