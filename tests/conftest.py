"""Shared test fixtures.

The real corpora and the T5 tokenizer live in ``../shared`` beside the checkout (never copied
into the repository). Override with ``HL_SHARED`` if your layout differs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HL_SHARED", REPO.parent / "shared"))
DATA_DIR = SHARED / "data"
T5_TOKENIZER = SHARED / "tokenizers" / "t5"


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


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch, tmp_path):
    # No test may read the user's real cache folder or talk to a hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HL_CACHE_DIR", str(tmp_path / "hl-cache"))
    monkeypatch.delenv("HL_DATA_DIR", raising=False)


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
    from _fake_model import one_torch_thread

    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, t5_tokenizer_path) -> str:
    """The default tiny T5 (2 layers, d_model 32); modules needing another shape override this."""
    return save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"), t5_tokenizer_path)
