"""Offline checks for the Hugging Face integrations (``datasets``, ``evaluate``): the hub must never be
reached, at run time or in tests.

:func:`go_offline` sets the libraries' offline switches (call it before they are imported; the
test modules do so at import); :func:`network_refused` records and refuses every attempt to open
an internet connection or resolve a host name while it is active, so a test can assert that none
was made (a refused attempt that a library swallowed would still be recorded)."""

from __future__ import annotations

import contextlib
import os
import socket

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}


def go_offline() -> None:
    os.environ.update(OFFLINE_ENV)


@contextlib.contextmanager
def network_refused(attempts: list):
    """Append every connection or name-resolution attempt to ``attempts`` and make it fail
    (local Unix sockets stay usable)."""
    connect, resolve = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return connect(self, address)
        attempts.append(address)
        raise OSError(f"test: network access refused ({address})")

    def guarded_resolve(host, *args, **kwargs):
        attempts.append(host)
        raise OSError(f"test: name resolution refused ({host})")

    socket.socket.connect, socket.getaddrinfo = guarded_connect, guarded_resolve
    try:
        yield
    finally:
        socket.socket.connect, socket.getaddrinfo = connect, resolve
