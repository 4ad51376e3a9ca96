"""Whether the Hugging Face hub can be asked, for backbones (:mod:`hlcli.backbones`) and datasets
(:mod:`hlcli.data.sources`) alike. Free of torch, so that a dataset check does not import it."""

from __future__ import annotations

import functools
import os

_TRUE = ("1", "ON", "YES", "TRUE")


def hub_offline(*, datasets: bool = False) -> bool:
    """True when the Hugging Face hub cannot be asked: ``HF_HUB_OFFLINE`` (for ``datasets``, also
    ``HF_DATASETS_OFFLINE``) is set, or there is no route to it (checked once per process).

    The libraries read these variables once, at import; a variable set since is seen here.
    """
    from huggingface_hub import constants

    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if datasets else ("HF_HUB_OFFLINE",)
    if constants.HF_HUB_OFFLINE or any(os.environ.get(name, "").upper() in _TRUE for name in names):
        return True
    return not _hub_reachable(constants.ENDPOINT)


@functools.lru_cache(maxsize=4)
def _hub_reachable(endpoint: str) -> bool:
    """Whether a TCP connection to the hub opens within 3 s (one attempt per process)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
    except (OSError, ValueError):
        return False
    return True
