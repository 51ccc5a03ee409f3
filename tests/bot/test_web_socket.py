"""The web server's listening socket."""

import socket

from bot.web.server import bind


def test_accepted_connections_send_at_once():
    """TCP_NODELAY on the listening socket, which each accepted connection inherits: without
    it a reply on a reused connection waits 40 ms for the client's delayed ACK."""
    listening = bind("127.0.0.1", 0)
    with listening, socket.create_connection(listening.getsockname()[:2]) as client:
        accepted, _ = listening.accept()
        with accepted:
            assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert client  # the other end, connected
