"""HyperFormer++ (Karimi Mahabadi et al. 2021): HyperLoader with the generated LoRA switched off.

Same model classes (:mod:`hlcli.methods.hyperloader`), same hypernetwork; only the default of
``use_lora`` differs (``config.py``; the position table shrinks to the two adapter rows, as in the
authors' code).
"""

from __future__ import annotations

from hlcli.methods import register_method
from hlcli.methods.hyperformer.config import HyperFormerConfig
from hlcli.methods.hyperloader import weight_source_builder

register_method(
    "hyperformer",
    config_cls=HyperFormerConfig,
    build=weight_source_builder("hyperformer"),
    display_name="HyperFormer++",
    # HyperLoader's released code with LoRA off, seven tasks.
    paper={"t5-base": ("228,066,928", "5,210,992")},
)
