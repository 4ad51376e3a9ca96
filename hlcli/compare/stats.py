"""Per-cell uncertainty of a comparison table: bootstrap intervals and paired tests vs the row's best.

For every (method, dataset) cell the run's predictions file (``predictions/<split>/<task>.jsonl``,
written by ``hl evaluate``) is reduced to per-sentence chunk counts; resamples of the sentences
give the cell's 95 % interval, and the *same* resamples give each method's paired test against
the row's best. With several seeds a resample also draws the training seeds (with replacement)
and its statistic is the mean F1 over the drawn seeds (each seed's predictions on the same
resampled sentences): a two-level bootstrap, so a tie mark accounts for the spread between seeds
too. The Average row resamples every dataset and averages, as the table does. Method:
docs/bootstrap.md.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hlcli import runs
from hlcli.compare import bootstrap

# (resamples,) F1 of one cell and the sentences it was resampled over (fingerprints, by seed).
Samples = tuple[np.ndarray, tuple[str, ...]]


@dataclass
class CellStats:
    """Rows × methods frames: interval bounds and the paired p-value against the row's best."""

    ci_low: pd.DataFrame
    ci_high: pd.DataFrame
    p_value: pd.DataFrame


class _Loader:
    """Reads each predictions file once and draws each sentence set's resamples once."""

    def __init__(self, split: str) -> None:
        self.split = split
        self.counts: dict[Path, tuple[np.ndarray, str] | None] = {}
        self.weights: dict[str, np.ndarray] = {}

    def cell(self, run_dirs: list[str], task: str) -> Samples | None:
        per_seed, keys = [], []
        for run_dir in run_dirs:
            loaded = self._counts(Path(run_dir) / runs.PREDICTIONS / self.split / f"{task}.jsonl")
            if loaded is None:
                return None
            counts, key = loaded
            if key not in self.weights:
                self.weights[key] = bootstrap.resample_weights(len(counts), key)
            per_seed.append(bootstrap.resampled_f1(counts, self.weights[key]))
            keys.append(key)
        return bootstrap.over_seeds(np.stack(per_seed)), tuple(keys)

    def _counts(self, path: Path) -> tuple[np.ndarray, str] | None:
        if path not in self.counts:
            self.counts[path] = _read_predictions(path)
        return self.counts[path]


def _read_predictions(path: Path) -> tuple[np.ndarray, str] | None:
    packed = path.with_name(path.name + ".gz")  # an archived run's (hlcli.compare.archive)
    try:
        if not path.exists() and packed.exists():
            text = gzip.decompress(packed.read_bytes()).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        tokens, gold, pred = ([r[k] for r in records] for k in ("tokens", "gold", "pred"))
        return bootstrap.entity_counts(gold, pred), bootstrap.fingerprint(tokens, gold)
    except (OSError, EOFError, ValueError, KeyError, TypeError):  # (gzip: OSError, EOFError)
        return None  # no (readable) predictions: the cell gets no interval, never a made-up one


def cell_stats(
    frame: pd.DataFrame,
    tasks: list[str],
    titles: list[str],
    methods: list[str],
    split: str,
    best: dict[str, list[str]],
    average: str,
) -> CellStats:
    """Intervals and p-values of one table from its long-form rows (one per run and task)."""
    loader = _Loader(split)
    samples: dict[tuple[str, str], Samples | None] = {}
    for method in methods:
        rows = frame[frame["method"] == method]
        for task, title in zip(tasks, titles):
            hit = rows[rows["task"] == task].sort_values("seed", na_position="first")
            samples[title, method] = loader.cell(list(hit["run_dir"]), task) if len(hit) else None
        parts = [samples[title, method] for title in titles]
        samples[average, method] = None if any(p is None for p in parts) else (
            np.mean([p[0] for p in parts], axis=0), tuple(k for p in parts for k in p[1])
        )
    index = titles + [average]
    frames = {name: pd.DataFrame(math.nan, index=index, columns=methods, dtype=float) for name in ("low", "high", "p")}
    for row in index:
        reference = next((samples[row, m] for m in best.get(row, []) if samples.get((row, m)) is not None), None)
        for method in methods:
            cell = samples[row, method]
            if cell is None:
                continue
            frames["low"].at[row, method], frames["high"].at[row, method] = bootstrap.interval(cell[0])
            # Paired only over the same sentences; the reference itself has no p-value.
            if reference is not None and cell is not reference and cell[1] == reference[1]:
                frames["p"].at[row, method] = bootstrap.paired_p_value(reference[0], cell[0])
    return CellStats(frames["low"], frames["high"], frames["p"])


def tied(stats: CellStats | None, best: dict[str, list[str]]) -> dict[str, list[str]]:
    """Row → methods not significantly worse than the row's best (p ≥ ALPHA), the best excluded."""
    if stats is None:
        return {row: [] for row in best}
    return {
        row: [
            m for m, p in stats.p_value.loc[row].items()
            if m not in best.get(row, []) and not math.isnan(p) and p >= bootstrap.ALPHA
        ]
        for row in stats.p_value.index
    }
