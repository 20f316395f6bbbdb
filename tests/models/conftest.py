from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from .wire import WireServer


@pytest.fixture
def wire() -> Iterator[WireServer]:
    """A provider stand-in on 127.0.0.1, stopped after the test."""
    server = WireServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
