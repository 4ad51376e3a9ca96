"""Corpora, readers and the sequence-labelling record shared by every part of hlcli."""

from hlcli.data.example import Example

__all__ = ["Example"]
