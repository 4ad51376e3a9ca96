"""Corpora, readers and the sequence-labelling record shared by every part of hlcli."""

from hlcli.data.corpora import CORPORA, label_types, load_corpus, load_split, resolve_data_dir
from hlcli.data.example import Example
from hlcli.data.readers import READERS, read_file

__all__ = ["CORPORA", "READERS", "Example", "label_types", "load_corpus", "load_split", "read_file", "resolve_data_dir"]
