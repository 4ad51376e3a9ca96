"""The paper's Figure 2: average F1 against % trainable parameters."""

from __future__ import annotations

from pathlib import Path

from hlcli.compare.facts import SINGLE_TASK_MARK, display_name, is_single_task
from hlcli.compare.results import CompareResult, one_seed
from hlcli.io import atomic_write

MARKERS = "o^vD<>Ph*X"


def plot_figure2(result: CompareResult, path: str | Path) -> None:
    """Average F1 against % trainable parameters (log x): one marker per method and fraction.

    Single-task methods get a hollow square and a legend note. With seeds, the mean over seeds and
    a bar of ± their standard deviation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    plotted, bars = 0, False
    for index, method in enumerate(result.methods):
        points = [_point(result, method, fraction) for fraction in result.fractions]
        points = [(*p, f"{f:g}") for f, p in zip(result.fractions, points) if p is not None]
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
        spread = [p for p in points if p[2] is not None]
        if spread:  # ± the standard deviation over seeds of the average, as the table's Average row
            ax.errorbar([p[0] for p in spread], [p[1] for p in spread], yerr=[p[2] for p in spread], fmt="none",
                        ecolor=color, elinewidth=1, capsize=3)
            bars = True
        if len(result.fractions) > 1:
            for x, y, _, label in points:
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        plotted += 1
    ax.set_xscale("log")
    ax.set_xlabel("% trainable parameters (log scale)")
    ax.set_ylabel(f"average {result.split} micro-F1")
    bars_note = "; bars: ± std over seeds" if bars else ""
    ax.set_title(f"Average F1 vs. trainable parameters (the paper's Figure 2 layout{bars_note})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if plotted:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    with atomic_write(path, "wb", encoding=None) as handle:
        fig.savefig(handle, format="png", dpi=150)
    plt.close(fig)


def _point(result: CompareResult, method: str, fraction: float) -> tuple[float, float, float | None] | None:
    """(% trainable, average F1, its standard deviation over the seeds that scored every task, or
    None with fewer than two) of a method at a fraction; None unless every task has a score."""
    rows = result.results[(result.results["method"] == method) & (result.results["fraction"] == fraction)]
    if set(rows["task"]) != set(result.tasks):
        return None
    counts = one_seed(rows).drop_duplicates("run_dir")[["total", "trainable"]].dropna()
    if not len(counts) or counts["total"].sum() <= 0:
        return None
    per_seed = rows.pivot_table(index="task", columns=rows["seed"].fillna(-1), values="f1", aggfunc="first")
    averages = per_seed.dropna(axis=1).mean(axis=0)  # each seed's Average, over the seeds with every task
    spread = float(averages.std(ddof=1)) if len(averages) > 1 else None
    share = 100.0 * counts["trainable"].sum() / counts["total"].sum()
    return share, float(rows.groupby("task")["f1"].mean().mean()), spread
