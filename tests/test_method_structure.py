"""The shape of hlcli.methods: plain taggers at the base, facts in the registry, one dispatch."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from conftest import minilm_path
from hlcli.errors import UsageError
from hlcli.methods import known_methods, method_entry
from hlcli.methods.base import TaskSpec


def test_generated_weight_models_are_plain_taggers_plus_a_source():
    from hlcli.methods.full_finetune.model import FullFineTuneEncoderModel, FullFineTuneT5Model
    from hlcli.methods.hyperdecoder.model import HyperdecoderT5Model
    from hlcli.methods.hyperloader.encoder import WeightSourceEncoderTagger
    from hlcli.methods.hyperloader.model import WeightSourceT5Tagger
    from hlcli.methods.plain import PlainEncoderTagger, PlainT5Tagger
    from hlcli.methods.unipelt.encoder import UniPELTEncoderModel

    for model in (WeightSourceT5Tagger, HyperdecoderT5Model, FullFineTuneT5Model):
        assert issubclass(model, PlainT5Tagger)
    for model in (WeightSourceEncoderTagger, UniPELTEncoderModel, FullFineTuneEncoderModel):
        assert issubclass(model, PlainEncoderTagger)
    # The plain taggers stand on nothing a method adds.
    assert PlainT5Tagger.__mro__[1].__name__ == "TaggingModel"
    assert PlainEncoderTagger.__mro__[1].__name__ == "TaggingModel"


def test_registry_entries_hold_the_facts_about_each_method():
    entries = {name: method_entry(name) for name in known_methods()}
    assert [n for n, e in entries.items() if e.single_task] == ["unipelt"]
    assert [n for n, e in entries.items() if e.needs_decoder] == ["hyperdecoder"]
    assert {n: e.display_name for n, e in entries.items()} == {
        "full-finetune": "Fine-tuning",
        "hyperdecoder": "Hyperdecoder",
        "hyperformer": "HyperFormer++",
        "hyperloader": "HyperLoader",
        "lora-only": "LoRA",
        "static": "Static",
        "unipelt": "UniPELT",
    }
    assert entries["hyperloader"].paper == {"t5-base": ("229,640,304", "6,784,368")}
    assert entries["static"].paper == {}
    with pytest.raises(UsageError, match="known methods"):
        method_entry("hyperlaoder")


def test_static_on_an_encoder_is_the_hyperloader_model_with_a_static_source():
    from hlcli.backbones import Backbone
    from hlcli.methods import method_config
    from hlcli.methods.hyperloader.hypernetwork import HyperNetwork
    from hlcli.methods.hyperloader.weight_source import StaticWeightSource

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())  # skips without the MiniLM package
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64))
    backbone = Backbone(name="tiny", path="tiny", config=bert.config, model=bert, tokenizer=tokenizer)
    tasks = [TaskSpec("atis", ["city"]), TaskSpec("snips", ["artist"])]
    model = method_entry("static").build(method_config("static"), backbone, tasks)
    assert isinstance(model.source, StaticWeightSource)
    assert not any(isinstance(m, HyperNetwork) for m in model.modules())
    assert not any("task_embeddings" in name for name, _ in model.named_buffers())
    # The same weights whatever the task.
    first, second = model.source(0)["encoder"], model.source(1)["encoder"]
    assert torch.equal(first.lora_A, second.lora_A)


def test_backbones_and_methods_share_one_family_table():
    from hlcli import backbones
    from hlcli.methods import common

    assert backbones.T5_MODEL_TYPES is common.T5_MODEL_TYPES
    assert not set(common.T5_MODEL_TYPES) & set(common.ENCODER_MODEL_TYPES)
