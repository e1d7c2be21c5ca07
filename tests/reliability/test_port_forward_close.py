"""Closing a port-forward handle while its connections are being relayed ends every relay quietly.

Found in a full run: the handle closed a relayed socket while its relay thread was about to select() on it,
and the thread died with EBADF ("Exception in thread port-forward relay")."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from meshctl.platform.kubernetes import portforward
from meshctl.platform.kubernetes.portforward import _relay


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BaseException]]:
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    yield errors


def test_a_side_closed_between_the_check_and_the_select_ends_the_relay() -> None:
    client, client_peer = socket.socketpair()
    remote, remote_peer = socket.socketpair()
    checks = 0

    def closed() -> bool:  # the interleaving from the run: the handle closes the socket just after this check
        nonlocal checks
        checks += 1
        if checks == 1:
            client.close()
        return checks > 1

    try:
        assert _relay(client, remote, closed) is None
    finally:
        for sock in (client, client_peer, remote, remote_peer):
            sock.close()


def test_closing_the_handle_wakes_a_waiting_relay_without_an_error(thread_errors: list[BaseException]) -> None:
    client, client_peer = socket.socketpair()
    remote, remote_peer = socket.socketpair()
    handle = portforward.ForwardedPort.__new__(portforward.ForwardedPort)
    handle._lock = threading.Lock()
    handle._closed = False
    handle._listener = None
    handle._open_sockets = {client, remote}
    ended: list[object] = []

    def relay() -> None:
        ended.append(_relay(client, remote, lambda: handle._closed))
        handle._forget(client, remote)

    thread = threading.Thread(target=relay, name="port-forward relay")
    thread.start()
    client_peer.sendall(b"ping")
    assert remote_peer.recv(4) == b"ping"  # the relay is running and now waits in select()
    handle.close()
    thread.join(10)
    try:
        assert not thread.is_alive() and len(ended) == 1  # it returned, rather than dying in select()
        assert thread_errors == []
        assert client.fileno() == -1 and remote.fileno() == -1  # the relay closed what the handle shut down
    finally:
        for sock in (client_peer, remote_peer):
            sock.close()
