"""The Python API (``hlcli.load / .tag / .evaluate / hlcli.train``), ``__all__``/``__version__``,
``hl --version`` and shell completion."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

import hlcli
from _cli import invoke
from hlcli.errors import HLError, UsageError

pytestmark = pytest.mark.usefixtures("one_thread")

# A real run in seconds: HyperLoader on conftest's tiny T5 (see conftest.TINY_RUN). At lr 1e-6 its 2
# steps keep the random model's guesses, entity tags all over (a run at 3e-3 soon tags everything
# O): the spans checked below are not empty. It learns nothing: tests/test_e2e_learning.py does.
SETTINGS = dict(method_overrides={"reduction_factor": 4}, batch_size=8, lr=1e-6, warmup_steps=1, max_steps=2,
                eval_every=2, checkpoint_every=2)  # fmt: skip
TEXTS = ["show flights from boston to new york", "", "  show   flights from paris to oslo ", "play something by adele"]


def test_import_is_cheap_and_names_are_public():
    code = "import sys, hlcli; print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
    assert set(hlcli.__all__) >= {"load", "evaluate", "train", "Tagger", "Tagged", "Span", "EvalResult", "TrainConfig", "__version__"}
    for name in hlcli.__all__:
        assert getattr(hlcli, name) is not None, name
    assert set(hlcli.__all__) <= set(dir(hlcli))
    assert hlcli.__version__ == importlib.metadata.version("hlcli")
    with pytest.raises(AttributeError):
        hlcli.no_such_name  # noqa: B018


def test_version_and_completion_options():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"hl {hlcli.__version__}\n"
    help_text = invoke("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    script = invoke("--show-completion", "bash")
    assert script.exit_code == 0 and "_hl_completion" in script.stdout and "complete " in script.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_t5, toy_tasks):
    """A real run trained through hlcli.train (the toy corpora as own data)."""
    folder = tmp_path_factory.mktemp("api") / "run"
    config = hlcli.TrainConfig(tasks=toy_tasks("flights", "music").split(","), model=tiny_t5, output_dir=str(folder), **SETTINGS)
    result = hlcli.train(config)
    assert result.run_dir == folder and result.steps == 2
    return folder


def test_tag_gives_the_spans_hl_tag_writes(run):
    tagger = hlcli.load(run)
    assert tagger.tasks == ["flights", "music"] and tagger.types("music") == ["artist", "service"]
    assert tagger.checkpoint == run / "checkpoints" / "best" and tagger.run_dir == run
    docs = tagger.tag(TEXTS, task="flights")
    assert [d.text for d in docs] == TEXTS
    assert docs[1].tokens == docs[1].tags == docs[1].spans == []
    assert docs[2].tokens == ["show", "flights", "from", "paris", "to", "oslo"]
    for doc in docs:
        assert len(doc.tags) == len(doc.tokens)
        assert all(doc.text[s.start : s.end] == s.text for s in doc.spans)
    # The model's guesses are far from right, but they are spans of the task's types (not an empty list).
    spans = [s for doc in docs for s in doc.spans]
    assert spans and {s.type for s in spans} <= set(tagger.types("flights"))

    result = invoke("tag", run, "--task", "flights", "--format", "jsonl", input="\n".join(TEXTS) + "\n")
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [d.to_json() for d in docs]

    one = tagger.tag(TEXTS[0], task="flights")  # one text → one result
    assert one == docs[0]


def test_tag_refusals(run):
    tagger = hlcli.load(run)
    with pytest.raises(UsageError, match="task not given"):
        tagger.tag(["play queen"])
    with pytest.raises(UsageError, match="unknown task 'atis'"):
        tagger.tag(["x"], task="atis")
    with pytest.raises(HLError, match="no such run or checkpoint folder"):
        hlcli.load(run / "nope")


def test_evaluate_returns_what_hl_evaluate_prints(run, tmp_path):
    cli = invoke("evaluate", run, "--format", "json")
    assert cli.exit_code == 0, cli.output
    printed = json.loads(cli.stdout)
    result = hlcli.load(run).evaluate(split="test")
    assert result.to_json() == printed
    assert result.average == printed["average_f1"] == pytest.approx(sum(s["f1"] for s in result.scores.values()) / 2)
    assert set(result.per_label["music"]) == {"artist", "service"}
    # Evaluation and tagging predict through the same model: tagging the test sentences gives the
    # tags evaluate saved for them.
    records = [json.loads(line) for line in (run / "predictions" / "test" / "music.jsonl").read_text().splitlines()]
    tagged = hlcli.load(run).tag([" ".join(r["tokens"]) for r in records], task="music")
    assert [d.tags for d in tagged] == [r["pred"] for r in records]
    assert any(tag != "O" for r in records for tag in r["pred"])  # not a comparison of all-O tags
    direct = hlcli.evaluate(run, tasks=["music"], output=tmp_path / "music.json")
    assert direct.scores["music"] == result.scores["music"]
    assert json.loads((tmp_path / "music.json").read_text())["tasks"] == {"music": result.scores["music"]}


def test_train_from_a_recipe_with_settings(tmp_path, tiny_t5, toy_tasks):
    music = toy_tasks("music").split("=", 1)[1]
    recipe = tmp_path / "mine.toml"
    recipe.write_text(f'model = "{tiny_t5}"\nmax_steps = 100\nlr = 3e-3\nbatch_size = 8\n'
                      f'[method_overrides]\nreduction_factor = 4\n[tasks.music]\npath = "{music}"\n', encoding="utf-8")  # fmt: skip
    result = hlcli.train(recipe=recipe, max_steps=2, eval_every=2, checkpoint_every=2, warmup_steps=0,
                         output_dir=str(tmp_path / "run"))  # fmt: skip
    assert result.steps == 2  # the keyword overrode the recipe's 100
    assert json.loads((tmp_path / "run" / "config.json").read_text())["tasks"] == ["music"]
    with pytest.raises(UsageError, match="a TrainConfig and recipe/settings given"):
        hlcli.train(hlcli.TrainConfig(tasks=["music"]), max_steps=3)
