"""The Python API: load a trained run, tag text, score it, train from a script.

    import hlcli

    tagger = hlcli.load("runs/quickstart")
    tagger.tasks                                   # ['atis', 'restaurant']
    [doc] = tagger.tag(["book a table for two at an italian place"], task="restaurant")
    [(s.type, s.start, s.end, s.text) for s in doc.spans]
    scores = tagger.evaluate(split="test")         # an EvalResult, as hl evaluate prints it

    result = hlcli.train(recipe="recipes/quickstart.toml", max_steps=50)

Every ``hl`` command that predicts or scores goes through the same functions
(:func:`hlcli.tagging.tag_texts`, :func:`hlcli.evaluation.evaluate`, :func:`hlcli.training.train`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence, overload

from hlcli import runs
from hlcli.config import TrainConfig, load_config
from hlcli.errors import UsageError, unknown_name
from hlcli.evaluation import EvalResult, evaluate
from hlcli.io import Log
from hlcli.methods.base import TaggingModel
from hlcli.tagging import Span, Tagged, load_tagger, tag_texts

if TYPE_CHECKING:  # hlcli.training imports accelerate: only hlcli.train needs it
    from hlcli.training import TrainResult

__all__ = ["Tagger", "load", "evaluate", "train", "Tagged", "Span", "EvalResult", "TrainConfig"]


class Tagger:
    """A trained model, ready to tag text: what :func:`load` returns.

    ``checkpoint`` is the folder the weights came from; ``run_dir`` the run folder holding it
    (``None`` for a checkpoint copied out of its run); ``model`` the :class:`TaggingModel` itself.
    """

    def __init__(self, model: TaggingModel, *, checkpoint: Path, run_dir: Path | None = None) -> None:
        self.model = model
        self.checkpoint = checkpoint
        self.run_dir = run_dir

    def __repr__(self) -> str:
        return f"Tagger({self.model.method!r}, tasks={self.tasks}, checkpoint={str(self.checkpoint)!r})"

    @property
    def tasks(self) -> list[str]:
        """The model's task names, in training order."""
        return [t.name for t in self.model.tasks]

    def types(self, task: str) -> list[str]:
        """The entity types ``task`` can label (sorted)."""
        return list(self.model.tasks[self._task_index(task)].types)

    @overload
    def tag(self, texts: str, *, task: str | None = None, batch_size: int = 64) -> Tagged: ...
    @overload
    def tag(self, texts: Iterable[str], *, task: str | None = None, batch_size: int = 64) -> list[Tagged]: ...

    def tag(self, texts, *, task=None, batch_size=64):
        """Tag one text (→ one :class:`Tagged`) or several (→ a list, in order).

        Words are the whitespace-separated runs of each text; every result has ``tokens``, their
        BIO ``tags`` and the ``spans`` (type, character offsets into the text, text) — the record
        ``hl tag --format jsonl`` writes. ``task`` may be left out when the model has one task.
        """
        task = self._default_task(task)
        if isinstance(texts, str):
            return next(tag_texts(self.model, task, [texts], batch_size=batch_size))
        return list(tag_texts(self.model, task, texts, batch_size=batch_size))

    def evaluate(
        self,
        *,
        split: str = "test",
        tasks: Sequence[str] | None = None,
        data_dir: str | Path | None = None,
        batch_size: int = 64,
        output: str | Path | None = None,
        ci: bool = False,
    ) -> EvalResult:
        """Score the model on its tasks' ``split``, exactly as ``hl evaluate`` does (same files written).

        See :func:`hlcli.evaluation.evaluate`; the loaded model is reused, not read again.
        """
        # The checkpoint folder, not the run: the scores are of the model loaded here.
        return evaluate(self.checkpoint, split=split, tasks=tasks, data_dir=data_dir, batch_size=batch_size,
                        output=output, ci=ci, model=self.model)  # fmt: skip

    def _task_index(self, task: str) -> int:
        if task not in self.model.task_index:
            raise unknown_name("task", task, self.tasks)
        return self.model.task_index[task]

    def _default_task(self, task: str | None) -> str:
        if task is not None:
            return task
        if len(self.tasks) == 1:
            return self.tasks[0]
        raise UsageError("task not given", expected="task=" + " | ".join(self.tasks))


def load(run_or_checkpoint: str | Path) -> Tagger:
    """A run folder (its best checkpoint, else its last) or a checkpoint folder, ready to tag.

    The same resolution as ``hl tag RUN`` and ``hl evaluate RUN``; a bad path raises
    :class:`hlcli.errors.HLError` with the one-line message the CLI prints.
    """
    checkpoint, run_dir = runs.resolve_checkpoint(run_or_checkpoint)
    return Tagger(load_tagger(checkpoint), checkpoint=checkpoint, run_dir=run_dir)


def train(
    config: TrainConfig | None = None,
    /,
    *,
    recipe: str | Path | None = None,
    resume: bool = False,
    log: Log | None = None,
    **settings: Any,
) -> TrainResult:
    """Train as ``hl train`` does, from a :class:`TrainConfig`, a recipe and/or settings.

    ``hlcli.train(TrainConfig(tasks=["atis"], max_steps=100))``, or
    ``hlcli.train(recipe="recipes/quickstart.toml", max_steps=100, output_dir="runs/x")``: settings
    are TrainConfig fields and override the recipe's (as flags do). ``log`` receives the one-line
    messages ``hl train`` prints on stderr (default: none). Returns the run's
    :class:`~hlcli.training.TrainResult` (``run_dir``, ``best_value``, ...).
    """
    from hlcli.adapt import setup_for
    from hlcli.training import train as train_run

    if config is None:
        config = load_config(recipe, settings)
    elif recipe is not None or settings:
        raise UsageError("a TrainConfig and recipe/settings given", expected="one of them")
    return train_run(config, resume=resume, log=log, setup=setup_for(config))  # hl adapt's runs: their derived model
