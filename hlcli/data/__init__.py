"""Corpora, readers and the sequence-labelling record shared by every part of hlcli."""

from hlcli.data.corpora import CORPORA, resolve_data_dir
from hlcli.data.example import Example
from hlcli.data.readers import READERS, read_file
from hlcli.data.tasks import label_types, load_corpus, load_split

__all__ = ["CORPORA", "READERS", "Example", "label_types", "load_corpus", "load_split", "read_file", "resolve_data_dir"]
