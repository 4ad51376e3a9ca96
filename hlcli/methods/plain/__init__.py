"""The plain taggers: a backbone as it is plus the tagging machinery; every method builds on one.

* :class:`~hlcli.methods.plain.t5.PlainT5Tagger` (``t5.py``) — SentT' seq2seq tagging on a T5;
  its SentT' sequence limits are :class:`~hlcli.methods.plain.config.SentTLimits` (``config.py``);
* :class:`~hlcli.methods.plain.encoder.PlainEncoderTagger` (``encoder.py``) — token
  classification on a BERT-family encoder, one linear head per task.

A method adds to one of them: a weight source patched into the layers (``hyperloader``,
``hyperformer``, ``lora-only``, ``static``, ``unipelt`` on T5), its own modules (``hyperdecoder``,
``unipelt`` on encoders) or nothing but a trainable backbone (``full-finetune``). Neither class
is a registered method; neither changes which backbone parameters train.
"""

from hlcli.methods.plain.encoder import PlainEncoderTagger
from hlcli.methods.plain.t5 import PlainT5Tagger

__all__ = ["PlainEncoderTagger", "PlainT5Tagger"]
