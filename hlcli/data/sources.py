"""Users' own corpora as tasks: a folder of files, or a Hugging Face dataset.

A task is named on the command line as ``NAME=FOLDER``, ``NAME=FORMAT:FOLDER``,
``NAME=hf:ORG/DATASET[:CONFIG]`` or ``hf:ORG/DATASET[:CONFIG]`` (named after the dataset), and in
a recipe as a ``[tasks.NAME]`` table (see :func:`recipe_tasks`). ``TrainConfig.tasks`` keeps only
the names; where each own task's data lives goes to ``TrainConfig.task_sources[NAME]``, a JSON
table that ``config.json`` records. Its keys:

- files: ``path`` (a folder with ``train.*``, ``dev|val|valid.*``, ``test.*``) and/or ``train``,
  ``val``, ``test`` (files), ``format`` (``conll``, ``mit``, ``jsonl``, ``goo``; detected if left out);
- a dataset: ``hf`` (hub id, or a local ``save_to_disk`` / parquet / JSON folder), ``config``,
  ``revision``, ``tokens`` and ``tags`` (column names; default ``tokens``/``ner_tags`` or
  ``words``/``tags``);
- written when the data is first read, so ``hl evaluate RUN`` finds (and checks) the same data:
  ``detected_format``, ``files`` and ``sha256`` per split, or the dataset's ``fingerprint`` per split; ``converted``
  when IOBES/BILOU tags were rewritten to BIO.

No val split → 10 % of train held out with the fixed seed, as for the MIT corpora; test is optional.
One file (``NAME=FILE``, ``path = FILE``) → 10 % of it held out as test, then 10 % of the rest as val.
CoNLL-2003's file names are understood: ``eng.train``, ``eng.testa`` (val), ``eng.testb`` (test).
"""

from __future__ import annotations

import json
import re
import logging
from pathlib import Path
from typing import Any

from hlcli.data import cache
from hlcli.data.cache import sha256_file
from hlcli.data.corpora import CORPORA, MIT_VAL_SEED, MIT_VAL_SHARE, SPLIT_ALIASES, hold_out_val, merge_fractions
from hlcli.data.example import Example
from hlcli.data.hf_datasets import HF_FILES, HF_PREFIX, read_dataset, saved_to_disk
from hlcli.data.readers import READERS
from hlcli.data.readers.common import ANY_SCHEME_TAG_RE, read_lines, to_bio
from hlcli.errors import HLError, UsageError, unknown_name

FILE_FORMATS = ("conll", "mit", "jsonl", "goo")
FILE_KEYS = ("path", "train", "val", "test", "format")
HF_KEYS = ("hf", "config", "revision", "tokens", "tags")
# Written by load_source, never by the user: what the data was when the run first read it.
PINNED_KEYS = ("detected_format", "files", "sha256", "fingerprint", "converted", "held_out_val", "held_out_test")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
FOLDER_LAYOUT = (
    "a folder with train.* and optional dev|val|valid.* and test.* files (CoNLL, MIT .bio, JSONL, parquet/JSON), "
    "CoNLL-2003's *.train, *.testa, *.testb, or one file"
)
# CoNLL-2003 ships eng.train, eng.testa (the validation set) and eng.testb (the test set).
CONLL2003_SUFFIXES = {"train": "train", "testa": "val", "testb": "test"}
SPEC_FORMS = "NAME, NAME=FOLDER, NAME=FORMAT:FOLDER, NAME=hf:ORG/DATASET[:CONFIG] or hf:ORG/DATASET[:CONFIG]"
# Source-table values that must be text (a number there used to crash deep in the reader).
_TEXT_KEYS = ("path", "train", "val", "test", "format", "hf", "config", "revision", "tokens", "tags")
# What a FORMAT: prefix looks like (a Windows drive letter "C:" is one letter, so it is not one).
_FORMAT_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]+")
# No handler configured: logging's last-resort handler prints the bare message on stderr.
_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- specs and recipe tables


def check_name(name: str, *, where: str | None = None) -> str:
    # Task names become file names (predictions/<task>.jsonl) and table rows.
    if not NAME_RE.fullmatch(name):
        raise UsageError(
            f"task name {name!r}",
            path=where,
            expected="letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    return name


def hf_task_name(dataset: str) -> str:
    """``hf:unimelb-nlp/wikiann:en`` → ``wikiann_en``: the dataset's own name, made a safe task name."""
    repo, _, config = dataset.partition(":")
    name = Path(repo.rstrip("/")).name + (f"_{config}" if config else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-").lower() or "dataset"


def parse_spec(spec: str, *, base: Path | None = None) -> tuple[str, dict[str, Any] | None]:
    """One ``--tasks`` item → (task name, source table or None for a registered corpus)."""
    name, sep, location = (part.strip() for part in spec.partition("="))
    if not sep:
        if not spec.startswith(HF_PREFIX):
            return spec, None
        name, location = hf_task_name(spec[len(HF_PREFIX) :]), spec
    check_name(name)
    if not location:
        raise UsageError(f"task {spec!r} names no data", expected=SPEC_FORMS)
    if location.startswith(HF_PREFIX):
        dataset, _, config = location[len(HF_PREFIX) :].partition(":")
        entry: dict[str, Any] = {"hf": dataset}
        if config:
            entry["config"] = config
    else:
        head, colon, rest = location.partition(":")
        if colon and head not in FILE_FORMATS and _FORMAT_WORD.fullmatch(head) and not Path(location).exists():
            raise unknown_name("format", head, FILE_FORMATS)  # mine=xml:/data, not a folder named "xml:/data"
        entry = {"path": rest, "format": head} if colon and head in FILE_FORMATS else {"path": location}
    return name, normalize_entry(name, entry, base=base)


def normalize_entry(name: str, entry: Any, *, base: Path | None = None, where: str | None = None) -> dict[str, Any]:
    """Check a source table's keys and make its paths absolute (relative to ``base``, default cwd)."""
    if not isinstance(entry, dict):
        expected = "keys " + ", ".join(FILE_KEYS + HF_KEYS)
        raise UsageError(f"task {name!r}: source must be a table", path=where, expected=expected)
    kind_keys = HF_KEYS if "hf" in entry else FILE_KEYS
    for key in entry:
        if key not in kind_keys + PINNED_KEYS:
            expected = "one of " + ", ".join(kind_keys)
            raise UsageError(f"task {name!r}: unknown key {key!r}", path=where, expected=expected)
    if "hf" not in entry and "path" not in entry and "train" not in entry:
        expected = "path = FOLDER, train = FILE or hf = DATASET"
        raise UsageError(f"task {name!r}: no data named", path=where, expected=expected)
    for key in _TEXT_KEYS:
        if key in entry and not isinstance(entry[key], str):
            raise UsageError(f"task {name!r}: {key} = {entry[key]!r}", path=where, expected="a string")
    if entry.get("format") is not None and entry["format"] not in FILE_FORMATS:
        raise unknown_name("format", entry["format"], FILE_FORMATS)
    base = Path.cwd() if base is None else base
    out = dict(entry)
    for key in ("path", "train", "val", "test"):
        if isinstance(out.get(key), str):
            try:
                out[key] = str((base / out[key]).expanduser().resolve())
            except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError("Symlink loop ...")
                raise HLError("symlink loop", path=base / out[key], expected=FOLDER_LAYOUT) from None
    if "hf" in out and (base / out["hf"]).expanduser().is_dir():
        out["hf"] = str((base / out["hf"]).expanduser().resolve())  # a local dataset folder, not a hub id
    return out


def resolve_tasks(
    tasks: Any, sources: dict[str, Any] | None, *, base: Path | None = None
) -> tuple[list[str], dict[str, dict]]:
    """(task names, their sources) from ``--tasks`` items and/or a ``tasks`` table.

    Sources of tasks not in the list are dropped: ``hl train --tasks atis,wnut`` reuses a recipe's
    ``[tasks.wnut]`` and leaves its other tasks out; a config naming only registered corpora has
    no sources at all, as before custom tasks existed.
    """
    sources = dict(sources or {})
    if isinstance(tasks, str):  # tasks = "atis, snips" in a recipe: the --tasks comma list
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    elif not isinstance(tasks, (list, tuple, dict)):
        raise UsageError(
            f"tasks = {tasks!r}", expected="a list of task names, a comma-separated string or [tasks.NAME] tables"
        )
    if isinstance(tasks, dict):  # a recipe's [tasks.NAME] tables
        for name, entry in tasks.items():
            if entry:
                sources[check_name(name)] = normalize_entry(name, entry, base=base)
        tasks = list(tasks)
    names = []
    for item in tasks:
        name, entry = parse_spec(str(item), base=base)
        if entry is not None:
            sources[name] = entry
        names.append(name)
    for name in names:
        if name in sources and name in CORPORA:
            raise UsageError(f"task {name!r} is a registered corpus", expected="another name for your own data")
    # Tables given as task_sources directly (config.json, a recipe) get the same checks.
    return names, {name: normalize_entry(name, sources[name], base=base) for name in names if name in sources}


def recipe_tasks(data: dict[str, Any], *, recipe: str | Path) -> dict[str, Any]:
    """A recipe dict with ``tasks`` (list of specs or ``[tasks.NAME]`` tables) resolved against the
    recipe's folder: ``tasks`` becomes a list of names and ``task_sources`` their sources."""
    if "tasks" not in data:
        return data
    tasks, fractions = _table_fractions(data["tasks"])
    try:
        names, sources = resolve_tasks(tasks, data.get("task_sources"), base=Path(recipe).resolve().parent)
    except HLError as error:
        error.path = error.path or str(recipe)  # the user edits the recipe, so name it
        raise
    out = {**data, "tasks": names}
    if sources or "task_sources" in data:
        out["task_sources"] = sources
    if fractions:  # [tasks.NAME] fraction = F: over the recipe's fraction for the other tasks
        out["fraction"] = merge_fractions(data.get("fraction"), fractions)
    return out


def _table_fractions(tasks: Any) -> tuple[Any, dict[str, Any]]:
    """``[tasks.NAME]`` tables without their ``fraction`` key, and those fractions by task."""
    if not isinstance(tasks, dict):
        return tasks, {}
    fractions = {
        name: entry["fraction"] for name, entry in tasks.items() if isinstance(entry, dict) and "fraction" in entry
    }
    tables = {name: ({k: v for k, v in entry.items() if k != "fraction"} if name in fractions else entry)
              for name, entry in tasks.items()}  # fmt: skip
    return tables, fractions


def describe(entry: dict[str, Any]) -> str:
    """Where a task's data comes from, in a few words (errors, ``hl data stats``)."""
    if "hf" in entry:
        return f"{HF_PREFIX}{entry['hf']}" + (f":{entry['config']}" if entry.get("config") else "")
    return entry.get("path") or entry["train"]


# --------------------------------------------------------------------------- loading


def load_source(task: str, entry: dict[str, Any]) -> dict[str, tuple[Example, ...]]:
    """The splits of an own task; records (first read) or checks (later reads) what the data was.

    The recorded keys land in the caller's ``entry``, i.e. in ``TrainConfig.task_sources``, which
    training writes to ``config.json`` after reading the data: that is how a run pins its data.
    """
    wanted = {k: v for k, v in entry.items() if k not in PINNED_KEYS}
    wanted_json = json.dumps(wanted, sort_keys=True)
    local = [wanted[key] for key in ("path", "train", "val", "test", "hf") if isinstance(wanted.get(key), str)]
    # Read again when a file changed on disk: the pins below are then those of the new content.
    splits, pins = cache.READS.get(("source", task, wanted_json), local, lambda: _load(task, wanted_json))
    for key in ("sha256", "fingerprint"):
        if key in entry and key in pins and entry[key] != pins[key]:
            changed = sorted(s for s in pins[key] if entry[key].get(s) != pins[key][s])
            raise HLError(
                f"task {task!r}: data changed since it was recorded "
                f"({key} of {', '.join(changed) or 'the splits'} differs)",
                path=describe(entry),
                hint="restore that data, or train a new run on the new data",
            )
    for key, value in pins.items():
        entry.setdefault(key, value)
    return splits


def _load(task: str, wanted_json: str) -> tuple[dict[str, tuple[Example, ...]], dict[str, Any]]:
    entry = json.loads(wanted_json)
    if "hf" not in entry:
        found = _split_files(entry)
        if _is_hf_folder(found):
            return _load_hf(task, {**{k: v for k, v in entry.items() if k not in FILE_KEYS}, "hf": entry["path"]})
        return _load_files(task, entry, found)
    return _load_hf(task, entry)


def _split_files(entry: dict[str, Any]) -> dict[str, Path]:
    """Split → file: the entry's own ``train``/``val``/``test``, the rest found in ``path``."""
    found = {split: Path(entry[split]) for split in ("train", "val", "test") if entry.get(split)}
    if "path" not in entry:
        return found
    folder = Path(entry["path"])
    if folder.is_file():  # NAME=FILE: the one file is split by _finish (test and val held out)
        return {"train": folder, **found}
    if not folder.is_dir():
        raise HLError("folder not found", path=folder, expected=FOLDER_LAYOUT)
    if saved_to_disk(folder):
        return {"hf-folder": folder}
    from_folder: dict[str, Path] = {}
    for child in sorted(folder.iterdir()):
        split = split_of(child.name)
        if split is None or child.name.startswith("."):
            continue
        if split in from_folder:
            raise HLError(
                f"two {split} files: {from_folder[split].name} and {child.name}", path=folder, expected=FOLDER_LAYOUT
            )
        from_folder[split] = child
    if "train" not in from_folder and "train" not in found:
        raise HLError("no train file", path=folder, expected=FOLDER_LAYOUT)
    return {**from_folder, **found}


def split_of(name: str) -> str | None:
    """The split a file in a task folder holds: by its first name part (``train.conll``,
    ``dev.txt``), else by CoNLL-2003's suffixes (``eng.train``, ``eng.testa`` = val, ``eng.testb`` = test)."""
    parts = name.lower().split(".")
    stem = SPLIT_ALIASES.get(parts[0], parts[0])
    if stem in ("train", "val", "test"):
        return stem
    return CONLL2003_SUFFIXES.get(parts[-1]) if len(parts) > 1 else None


def _is_hf_folder(found: dict[str, Path]) -> bool:
    return "hf-folder" in found or found["train"].suffix in HF_FILES


def detect_format(path: Path) -> str:
    """``goo`` for a seq.in/seq.out folder, ``jsonl`` by suffix, else ``mit`` when the first
    column holds the tags and ``conll`` (token first, tag last) otherwise."""
    if path.is_dir():
        return "goo"
    if path.suffix == ".jsonl":
        return "jsonl"
    for line in read_lines(path, expected=FOLDER_LAYOUT)[:50]:
        columns = line.split()
        if len(columns) >= 2 and columns[0] != "-DOCSTART-":
            tag_first = ANY_SCHEME_TAG_RE.fullmatch(columns[0]) and not ANY_SCHEME_TAG_RE.fullmatch(columns[-1])
            return "mit" if tag_first else "conll"
    return "conll"


def _load_files(task: str, entry: dict[str, Any], found: dict[str, Path]) -> tuple[dict, dict]:
    fmt = entry.get("format") or detect_format(found["train"])
    reader = READERS[fmt]
    splits: dict[str, tuple[Example, ...]] = {}
    converted = None
    for split, path in found.items():
        examples = reader(path, task=task) if fmt == "goo" else reader(path, task=task, schemes=True)
        examples, scheme = to_bio(examples, where=str(path))
        converted = converted or scheme
        splits[split] = tuple(examples)
    pins: dict[str, Any] = {
        "detected_format": fmt,
        "files": {split: str(path) for split, path in found.items()},
        "sha256": {split: sha256_file(path) for split, path in found.items()},
    }
    one_file = bool(entry.get("path")) and Path(entry["path"]).is_file()
    return _finish(task, splits, pins, converted, describe(entry), one_file=one_file)


def _finish(task: str, splits: dict, pins: dict, converted: str | None, where: str, *,
            one_file: bool = False) -> tuple[dict, dict]:
    if one_file and "test" not in splits:
        # NAME=FILE: the MIT corpora's rule, twice: 10 % of the file is test, then 10 % of the rest is val.
        splits["train"], splits["test"] = hold_out_val(splits["train"])
        pins["held_out_test"] = True
        _log.warning("note: %s: task %r: one file: %d %% held out as test, then %d %% of the rest as val "
                     "(fixed seed %d, as for the MIT corpora)", where, task, round(100 * MIT_VAL_SHARE),
                     round(100 * MIT_VAL_SHARE), MIT_VAL_SEED)  # fmt: skip
    if converted:
        pins["converted"] = f"{converted} -> BIO"
        # Said once while the data is unchanged (the result is kept), on stderr; config.json and
        # `hl data stats` say it too.
        _log.warning(
            "warning: %s: task %r: %s tags converted to BIO (S-/U- -> B-, E-/L- -> I-)", where, task, converted
        )
    pins["held_out_val"] = "val" not in splits
    if pins["held_out_val"]:
        splits["train"], splits["val"] = hold_out_val(splits["train"])
    return {split: splits[split] for split in ("train", "val", "test") if split in splits}, pins


def _load_hf(task: str, entry: dict[str, Any]) -> tuple[dict, dict]:
    splits, pins, converted, where = read_dataset(task, entry)
    return _finish(task, splits, pins, converted, where)
