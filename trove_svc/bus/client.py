"""A thread-safe bus handle for the control plane: one pika connection per thread."""

from __future__ import annotations

import threading
from typing import Any

from trove_svc import errors
from trove_wire.amqp import BrokerUnavailable, CallTimedOut, NoConsumerQueue, Publisher
from trove_wire.envelope import Context, Envelope

TASKMANAGER_QUEUE = "taskmanager"
CONDUCTOR_QUEUE = "conductor"


def guest_queue(instance_id: str) -> str:
    return f"guestagent.{instance_id}"


class Bus:
    def __init__(self, transport_url: str) -> None:
        self._url = transport_url
        self._local = threading.local()

    def _publisher(self) -> Publisher:
        publisher: Publisher | None = getattr(self._local, "publisher", None)
        if publisher is None:
            publisher = self._local.publisher = Publisher(self._url)
        return publisher

    def cast(self, queue: str, method: str, args: dict[str, Any], context: Context) -> None:
        try:
            self._publisher().cast(queue, Envelope.new(method, args, context))
        except BrokerUnavailable as exc:
            raise errors.ServiceUnavailable("The message bus is unavailable.") from exc

    def call(
        self, queue: str, method: str, args: dict[str, Any], context: Context, timeout: float
    ) -> Any:
        try:
            reply = self._publisher().call(queue, Envelope.new(method, args, context), timeout)
        except (CallTimedOut, NoConsumerQueue) as exc:
            raise errors.ServiceUnavailable(
                f"The guest agent did not answer {method} within {timeout:g}s."
            ) from exc
        except BrokerUnavailable as exc:
            raise errors.ServiceUnavailable("The message bus is unavailable.") from exc
        if reply.error_type == "NotSupported":
            raise errors.BadRequest(reply.error_message or "Not supported.")
        if reply.error_type == "NotFound":
            raise errors.NotFound(reply.error_message or "Not found.")
        if reply.error_type:
            raise errors.ServiceUnavailable(f"The guest agent failed {method}: {reply.error_type}.")
        return reply.result

    def delete_queue(self, queue: str) -> None:
        try:
            self._publisher().delete_queue(queue)
        except BrokerUnavailable as exc:
            raise errors.ServiceUnavailable("The message bus is unavailable.") from exc

    def close(self) -> None:
        publisher = getattr(self._local, "publisher", None)
        if publisher is not None:
            publisher.close()
            self._local.publisher = None
