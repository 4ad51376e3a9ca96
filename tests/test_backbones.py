"""Loading a hub model without a hub: one clear error at once, not ~40 s of retries.

What hlcli promises is its own behaviour: one reachability probe per process, and, when the hub
cannot be reached (or ``HF_HUB_OFFLINE`` is set), every ``from_pretrained`` told to read the local
cache only (``local_files_only=True``), which fails at once. What huggingface_hub does inside is
not counted here.
"""

from __future__ import annotations

import functools
import socket

import pytest
import transformers
from huggingface_hub import constants

import hlcli.backbones
import hlcli.hub
from hlcli.backbones import load_backbone
from hlcli.errors import HLError

NOT_CACHED = "hlcli-tests/not-in-any-cache"
MESSAGE = f"cannot load the config of backbone '{NOT_CACHED}'.*a hub id already in the local cache"


@pytest.fixture
def probes(monkeypatch) -> list[str]:
    """No network (every connection refused, no DNS); records each run of hlcli's reachability probe.

    The probe is cached per process; here it gets a fresh cache, so a test sees its own probes.
    """
    seen: list[str] = []
    probe = hlcli.hub._hub_reachable.__wrapped__

    @functools.lru_cache(maxsize=4)
    def recorded(endpoint: str) -> bool:
        seen.append(endpoint)
        return probe(endpoint)

    def refused(address, *args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(hlcli.hub, "_hub_reachable", recorded)
    monkeypatch.setattr(socket, "create_connection", refused)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    return seen


@pytest.fixture
def config_loads(monkeypatch) -> list[dict]:
    """The keyword arguments of every ``AutoConfig.from_pretrained`` call (the real one still runs)."""
    seen: list[dict] = []
    real = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    return seen


def hub_online(monkeypatch) -> None:
    """As on a machine where nobody set HF_HUB_OFFLINE (conftest sets it for every test)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_an_unreachable_hub_is_asked_once_then_only_the_cache_is_read(monkeypatch, probes, config_loads):
    hub_online(monkeypatch)
    for _ in range(2):  # a second model in the same process does not ask again
        with pytest.raises(HLError, match=MESSAGE):
            load_backbone(NOT_CACHED)
    assert probes == [constants.ENDPOINT]  # probed once, found unreachable
    assert len(config_loads) == 2 and all(kwargs.get("local_files_only") is True for kwargs in config_loads)


def test_hf_hub_offline_skips_even_the_probe(monkeypatch, probes, config_loads):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HLError, match=MESSAGE):
        load_backbone(NOT_CACHED)
    assert probes == []
    assert [kwargs.get("local_files_only") for kwargs in config_loads] == [True]


def test_a_reachable_hub_is_asked(monkeypatch, probes):
    # The other side of the probe: with a route to the hub, from_pretrained may download.
    class Connection:
        def close(self) -> None:
            pass

    hub_online(monkeypatch)
    monkeypatch.setattr(socket, "create_connection", lambda address, *args, **kwargs: Connection())
    assert hlcli.backbones._hub_kwargs(NOT_CACHED) == {} and probes == [constants.ENDPOINT]
