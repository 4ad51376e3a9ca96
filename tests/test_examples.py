"""Every file under examples/ runs as a user would run it (a subprocess, ``hl`` on the PATH), on
the tiny T5 that examples/make_tiny_t5.py writes and a few training steps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _cli import invoke

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STEPS = ["--max-steps", "4"]
# The petclinic test file's gold chunks per type (examples/own_corpus/petclinic/test.conll).
TEST_SUPPORT = {"animal": 3, "date": 3, "pet_name": 3, "service": 3, "time": 2}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)  # where pip put `hl` next to this Python
    if shutil.which("hl", path=bin_dir) is None:
        pytest.fail(f"no hl in {bin_dir}: install the package (pip install -e .)")
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, t5_tokenizer_path) -> Path:
    """examples/make_tiny_t5.py itself: the backbone the other examples get through --model."""
    folder = tmp_path_factory.mktemp("examples") / "tiny-t5"
    done = _run([sys.executable, str(EXAMPLES / "make_tiny_t5.py"), str(t5_tokenizer_path), "-o", str(folder)], folder.parent)
    assert done.stdout.startswith(f"wrote {folder}: a random T5, 1.07 M parameters")
    config = json.loads((folder / "config.json").read_text())
    assert (config["d_model"], config["num_layers"], config["vocab_size"]) == (32, 2, 32128)
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    return folder


def test_the_toy_corpus_reads_as_conll():
    result = invoke("data", "stats", "--tasks", f"petclinic={EXAMPLES / 'own_corpus' / 'petclinic'}", "--format", "json")
    assert result.exit_code == 0, result.output
    (stats,) = json.loads(result.stdout)
    assert (stats["train"], stats["val"], stats["test"], stats["labels"]) == (30, 5, 5, 5)


def test_own_corpus_recipe(tiny_t5, data_dir, tmp_path):
    done = _run(["bash", str(EXAMPLES / "own_corpus.sh"), "--model", str(tiny_t5), "--data-dir", str(data_dir), *STEPS,
                 "--eval-every", "4", "--checkpoint-every", "4", "--no-progress"], tmp_path)  # fmt: skip
    run = tmp_path / "runs" / "petclinic"
    config = json.loads((run / "config.json").read_text())
    assert config["tasks"] == ["atis", "petclinic"] and config["max_steps"] == 4
    per_label = json.loads((run / "eval.json").read_text())["test"]["per_label"]["petclinic"]
    assert {label: s["support"] for label, s in per_label.items()} == TEST_SUPPORT
    for label, support in TEST_SUPPORT.items():  # the --per-label table
        assert any(line.startswith(f"│ petclinic │ {label} ") and line.rstrip().endswith(f"{support} │") for line in done.stdout.splitlines())
    tagged = json.loads(done.stdout.splitlines()[-1])  # hl tag --format jsonl
    assert tagged["text"] == "book a checkup for my cat Tom on friday at 4 pm" and len(tagged["tags"]) == 12


def test_python_api(tiny_t5, data_dir, tmp_path):
    args = [sys.executable, str(EXAMPLES / "python_api.py"), "--model", str(tiny_t5), "--data-dir", str(data_dir), *STEPS]
    lines = _run(args, tmp_path).stdout.splitlines()
    assert "trained 4 steps into runs/api-example" in lines
    assert "tasks: ['atis', 'petclinic']; petclinic types: ['animal', 'date', 'pet_name', 'service', 'time']" in lines
    assert lines.index("can Bella get her vaccines tomorrow") > lines.index("book a checkup for my cat Tom on friday at 4 pm")
    assert any(line.startswith("petclinic test F1 ") for line in lines)
    assert [line.split()[0] for line in lines if "support" in line] == list(TEST_SUPPORT)


def test_add_task_with_adapt_and_export(tiny_t5, data_dir, tmp_path):
    done = _run(["bash", str(EXAMPLES / "add_task.sh"), "--model", str(tiny_t5), "--data-dir", str(data_dir), *STEPS,
                 "--out", str(tmp_path / "runs")], tmp_path)  # fmt: skip
    lines = done.stdout.splitlines()
    assert "added restaurant in 2 steps" in done.stdout and "exported atis:" in done.stdout
    exported, run = lines[-2:]  # the same sentence tagged by the export and by the run
    assert exported == run and exported.startswith("show/") and len(exported.split()) == 10
    config = json.loads((tmp_path / "runs" / "two-tasks+restaurant" / "config.json").read_text())
    assert config["tasks"] == ["restaurant"] and config["adapt"]["base_tasks"][0]["name"] == "atis"
