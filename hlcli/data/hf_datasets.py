"""Own tasks from Hugging Face datasets: a hub id (the datasets cache when offline), a
``save_to_disk`` folder, or a folder of parquet / Arrow / JSON files (see :mod:`hlcli.data.sources`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from hlcli.compat import dataset_fingerprint
from hlcli.data.cache import sha256_file
from hlcli.data.example import Example
from hlcli.data.readers.common import ANY_SCHEME_TAG_RE, is_word, to_bio
from hlcli.errors import HLError

HF_PREFIX = "hf:"
TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags")
HF_FILES = (".parquet", ".arrow", ".json")
OFFLINE_HINT = "; offline, a hub dataset must already be in the datasets cache (or pass a local folder)"
HF_SPLITS = {
    "train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val", "eval": "val", "test": "test"
}  # fmt: skip


def open_dataset(entry: dict[str, Any]):
    """A ``DatasetDict`` from a local folder or the hub id (the datasets cache when offline)."""
    import datasets

    location = entry["hf"]
    folder = Path(location)
    try:
        if folder.is_dir() and saved_to_disk(folder):
            loaded = datasets.load_from_disk(str(folder))
        else:
            with _offline_when_unreachable(location):
                loaded = datasets.load_dataset(location, entry.get("config"), revision=entry.get("revision"))
    except Exception as error:  # datasets raises many types (FileNotFoundError, ConnectionError, ValueError, ...)
        offline = "" if folder.is_dir() else OFFLINE_HINT
        raise HLError(
            f"cannot load dataset: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            path=f"{HF_PREFIX}{location}",
            expected="a hub dataset id, a save_to_disk folder or a folder of parquet/JSON files" + offline,
        ) from None
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


@contextlib.contextmanager
def _offline_when_unreachable(location: str) -> Iterator[None]:
    """datasets' offline mode for a hub id while the hub cannot be asked (``HF_DATASETS_OFFLINE`` /
    ``HF_HUB_OFFLINE`` set since import, or no route: :func:`hlcli.hub.hub_offline`).

    A cached dataset still loads; one that is not fails at once with datasets' own "Couldn't reach"
    error, instead of a request and five retries (~35 s). The libraries read the variables once, at
    import, so their flags are set for the call and restored after.
    """
    import datasets
    from huggingface_hub import constants

    from hlcli.hub import hub_offline

    if Path(location).exists() or not hub_offline(datasets=True):
        yield
        return
    saved = datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _column(dataset, names: tuple[str, ...], given: str | None, *, where: str, what: str) -> str:
    if given is not None:
        if given not in dataset.column_names:
            columns = ", ".join(dataset.column_names)
            raise HLError(f"no column {given!r}", path=where, expected=f"the {what} column; columns: {columns}")
        return given
    for name in names:
        if name in dataset.column_names:
            return name
    raise HLError(
        f"no {what} column",
        path=where,
        expected=f"a column named {' or '.join(names)} or {what} = COLUMN in the recipe; "
        f"columns: {', '.join(dataset.column_names)}",
    )


def _tag_names(dataset, column: str) -> list[str] | None:
    """ClassLabel names of a sequence-of-ClassLabel column, else None (string tags)."""
    inner = getattr(dataset.features[column], "feature", None)
    return list(inner.names) if hasattr(inner, "names") else None


def read_dataset(task: str, entry: dict[str, Any]) -> tuple[dict, dict, str | None, str]:
    """(splits, pins, scheme converted to BIO or None, the dataset's name) of an own task's dataset."""
    loaded = open_dataset(entry)
    ident = f"{HF_PREFIX}{entry['hf']}"
    splits: dict[str, tuple[Example, ...]] = {}
    fingerprints: dict[str, str] = {}
    converted = None
    for hf_split, dataset in loaded.items():
        split = HF_SPLITS.get(hf_split)
        if split is None or split in splits:
            continue
        where = f"{ident} split {hf_split}"
        token_col = _column(dataset, TOKEN_COLUMNS, entry.get("tokens"), where=where, what="tokens")
        tag_col = _column(dataset, TAG_COLUMNS, entry.get("tags"), where=where, what="tags")
        names = _tag_names(dataset, tag_col)
        examples = [
            _example(task, tokens, tags, names, where=f"{where} row {row}", tag_col=tag_col, token_col=token_col)
            for row, (tokens, tags) in enumerate(zip(dataset[token_col], dataset[tag_col], strict=True))
        ]
        examples, scheme = to_bio(examples, where=where)
        converted = converted or scheme
        splits[split] = tuple(examples)
        fingerprints[hf_split] = dataset_fingerprint(dataset)  # datasets' content hash of the split
    if "train" not in splits:
        raise HLError(f"no train split (splits: {', '.join(loaded)})", path=ident, expected="a train split")
    folder = Path(entry["hf"])
    if folder.is_dir() and not saved_to_disk(folder):
        # datasets fingerprints local files by path and mtime: a copied folder would look changed.
        files = [p for p in sorted(folder.rglob("*")) if p.is_file() and not _hidden(p.relative_to(folder))]
        return splits, {"sha256": {str(p.relative_to(folder)): sha256_file(p) for p in files}}, converted, ident
    return splits, {"fingerprint": fingerprints}, converted, ident


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def saved_to_disk(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _example(
    task: str, tokens: Any, tags: Any, names: list[str] | None, *, where: str, tag_col: str, token_col: str
) -> Example:
    """One dataset row as an Example; every problem names dataset, split, row and column."""
    if not isinstance(tokens, list) or not tokens or not all(is_word(t) for t in tokens):
        raise HLError(
            "tokens must be a non-empty list of strings without spaces",
            path=f"{where} column {token_col!r}",
            expected="one word per item",
        )
    column = f"{where} column {tag_col!r}"
    if not isinstance(tags, list) or len(tags) != len(tokens):
        count = len(tags) if isinstance(tags, list) else "no list of"
        raise HLError(f"{count} tags for {len(tokens)} tokens", path=column, expected="one tag per token")
    if names is not None:
        if not all(isinstance(t, int) and 0 <= t < len(names) for t in tags):
            raise HLError(f"tag id out of range in {tags}", path=column, expected=f"ClassLabel ids 0..{len(names) - 1}")
        tags = [names[t] for t in tags]
    for tag in tags:
        if not isinstance(tag, str) or not ANY_SCHEME_TAG_RE.fullmatch(tag):
            raise HLError(
                f"unknown tag {tag!r}", path=column, expected="string tags or ClassLabel names in BIO, IOBES or BILOU"
            )
    return Example(task=task, tokens=tuple(tokens), tags=tuple(tags), source=where)
