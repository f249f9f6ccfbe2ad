"""What a process's log says when the broker resets its connection: pika's transport
writes the stack into its message as well as its record's exception."""

from __future__ import annotations

import io
import logging
import socket
import struct
import threading
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from trove_wire import logs


@pytest.fixture
def resetting_server() -> Iterator[int]:
    """A TCP port whose server reads the client's first bytes, then resets the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        connection.recv(8)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    yield port
    server.join(5)
    listener.close()


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    output = io.StringIO()
    logs.configure("test", stream=output)
    yield output
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_a_reset_connection_is_one_line_naming_the_error(
    resetting_server: int, log_output: io.StringIO
) -> None:
    parameters = pika.ConnectionParameters(
        "127.0.0.1", resetting_server, connection_attempts=1, socket_timeout=5
    )
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(parameters)
    lines = log_output.getvalue().splitlines()
    transport_lines = [
        n for n, line in enumerate(lines) if "pika.adapters.utils.io_services_utils" in line
    ]
    assert len(transport_lines) == 1
    first = transport_lines[0]
    assert lines[first].endswith(
        "connection to the broker lost: ConnectionResetError(104, 'Connection reset by peer')"
    )
    assert not lines[first + 1].startswith(("Traceback", " "))
