"""The paper's Figure 2: average F1 against % trainable parameters."""

from __future__ import annotations

from pathlib import Path

from hlcli.compare.facts import SINGLE_TASK_MARK, display_name, is_single_task
from hlcli.compare.results import CompareResult, one_seed
from hlcli.io import atomic_write

MARKERS = "o^vD<>Ph*X"


def plot_figure2(result: CompareResult, path: str | Path) -> None:
    """Average F1 against % trainable parameters (log x): one marker per method and fraction.

    Single-task methods get a hollow square and a legend note. With seeds, the mean over seeds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    plotted = 0
    for index, method in enumerate(result.methods):
        points = [_point(result, method, fraction) for fraction in result.fractions]
        points = [(x, y, f"{f:g}") for f, p in zip(result.fractions, points) if p is not None for x, y in [p]]
        if not points:
            continue
        single = is_single_task(method)
        name = display_name(method) + (f" ({SINGLE_TASK_MARK} one model per dataset)" if single else "")
        color = f"C{index % 10}"
        if single:
            style = dict(marker="s", facecolors="none", edgecolors=color)
        else:
            style = dict(marker=MARKERS[index % len(MARKERS)], color=color)
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=60, label=name, **style)
        if len(result.fractions) > 1:
            for x, y, label in points:
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        plotted += 1
    ax.set_xscale("log")
    ax.set_xlabel("% trainable parameters (log scale)")
    ax.set_ylabel(f"average {result.split} micro-F1")
    ax.set_title("Average F1 vs. trainable parameters (the paper's Figure 2 layout)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if plotted:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    with atomic_write(path, "wb", encoding=None) as handle:
        fig.savefig(handle, format="png", dpi=150)
    plt.close(fig)


def _point(result: CompareResult, method: str, fraction: float) -> tuple[float, float] | None:
    """(% trainable, average F1) of a method at a fraction; None unless every task has a score."""
    rows = result.results[(result.results["method"] == method) & (result.results["fraction"] == fraction)]
    if set(rows["task"]) != set(result.tasks):
        return None
    counts = one_seed(rows).drop_duplicates("run_dir")[["total", "trainable"]].dropna()
    if not len(counts) or counts["total"].sum() <= 0:
        return None
    return 100.0 * counts["trainable"].sum() / counts["total"].sum(), float(rows.groupby("task")["f1"].mean().mean())
