"""Loading a hub model without a hub: one clear error at once, not ~40 s of retries."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest
from huggingface_hub import constants

from hlcli.backbones import load_backbone
from hlcli.errors import HLError

NOT_CACHED = "hlcli-tests/not-in-any-cache"
MESSAGE = f"cannot load the config of backbone '{NOT_CACHED}'.*a hub id already in the local cache"


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    """No DNS (as on a machine without network), recording every host name looked up."""
    seen: list[str] = []

    def no_dns(host, *args, **kwargs):
        seen.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    return seen


def test_an_unreachable_hub_is_asked_once_then_only_the_cache_is_read(monkeypatch, lookups):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(HLError, match=MESSAGE):
        load_backbone(NOT_CACHED)
    # hlcli's reachability probe, and at most huggingface_hub's one-off agent-registry fetch
    # (once per process); without the probe: a request and five retries, ~30 s of back-off.
    assert 1 <= len(lookups) <= 2 and set(lookups) == {urlparse(constants.ENDPOINT).hostname}


def test_hf_hub_offline_skips_even_the_probe(monkeypatch, lookups):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HLError, match=MESSAGE):
        load_backbone(NOT_CACHED)
    assert lookups == []
