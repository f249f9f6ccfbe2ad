"""The control plane's handle on the bus: one pika connection per thread, every message
sealed (`trove_wire.seal`), guest errors turned into domain errors here and only here."""

from __future__ import annotations

import threading
import uuid
from dataclasses import asdict
from typing import Any, TypeVar

from trove_svc.domain import errors
from trove_svc.security.keys import KeyRing
from trove_wire import contract, seal, topology
from trove_wire.amqp import BrokerUnavailable, CallTimedOut, NoConsumerQueue, Publisher
from trove_wire.envelope import Context, Envelope, MalformedMessage, Reply

R = TypeVar("R")

# What a guest's error code means to the API (the API maps domain errors to HTTP).
GUEST_ERRORS: dict[str, type[errors.TroveSvcError]] = {
    contract.ErrorCode.NOT_FOUND: errors.NotFound,
    contract.ErrorCode.CONFLICT: errors.Conflict,
    contract.ErrorCode.NOT_SUPPORTED: errors.BadRequest,
    contract.ErrorCode.INVALID: errors.BadRequest,
}


class Bus:
    def __init__(self, url: str, keyring: KeyRing) -> None:
        self._url = url
        self._keyring = keyring
        self._local = threading.local()

    @property
    def url(self) -> str:
        return self._url

    @property
    def keyring(self) -> KeyRing:
        return self._keyring

    def _publisher(self) -> Publisher:
        publisher: Publisher | None = getattr(self._local, "publisher", None)
        if publisher is None:
            publisher = self._local.publisher = Publisher(self._url)
        return publisher

    def cast_task(self, method: str, args: dict[str, Any], context: Context) -> None:
        """A confirmed, persistent cast to the task managers, sealed with the control key."""
        envelope = Envelope.new(method, args, context)
        body = seal.seal(self._keyring.service.control, seal.CAST, envelope.to_json())
        try:
            self._publisher().publish("", topology.TASKMANAGER, body, envelope.id)
        except (BrokerUnavailable, NoConsumerQueue) as exc:
            raise errors.ServiceUnavailable("The message bus is unavailable.") from exc

    def call_guest(
        self, instance_id: str, request: contract.Call[R], context: Context, timeout: float
    ) -> R:
        key = self._keyring.for_instance(instance_id)
        if key is None:
            raise errors.ServiceUnavailable(f"Instance {instance_id} has no guest to ask.")
        envelope = Envelope.new(request.method, request.arguments(), context)
        correlation_id = uuid.uuid4().hex
        body = seal.seal(key, seal.to_guest(instance_id), envelope.to_json())
        try:
            answer = self._publisher().call(
                topology.TO_GUEST,
                instance_id,
                body,
                correlation_id,
                timeout,
                reply_exchange=topology.guest_exchange(instance_id),
            )
        except (CallTimedOut, NoConsumerQueue) as exc:
            raise errors.ServiceUnavailable(
                f"The guest agent did not answer {request.method} within {timeout:g}s."
            ) from exc
        except BrokerUnavailable as exc:
            raise errors.ServiceUnavailable("The message bus is unavailable.") from exc
        try:
            opened = seal.open_sealed(key, seal.reply_from(instance_id, correlation_id), answer)
            reply = Reply.from_json(opened)
        except (seal.Refused, MalformedMessage) as exc:
            raise errors.ServiceUnavailable(
                f"The guest agent's answer to {request.method} failed its checks."
            ) from exc
        if reply.error_code:
            error = GUEST_ERRORS.get(reply.error_code, errors.ServiceUnavailable)
            if error is errors.ServiceUnavailable:
                raise errors.ServiceUnavailable(
                    f"The guest agent failed {request.method}: {reply.error_message or 'error'}"
                )
            raise error(reply.error_message or f"The guest agent refused {request.method}.")
        result: R = reply.result
        return result

    def cast_guest(self, instance_id: str, message: Any, ttl: float) -> None:
        """A message the guest acts on without answering (`contract.CASTS`), sealed with
        the instance's key; gone unread after `ttl` seconds, never persisted."""
        key = self._keyring.for_instance(instance_id)
        if key is None:
            raise errors.ServiceUnavailable(f"Instance {instance_id} has no guest to tell.")
        envelope = Envelope.new(message.method, asdict(message))
        body = seal.seal(key, seal.to_guest(instance_id), envelope.to_json())
        try:
            self._publisher().publish(
                topology.TO_GUEST,
                instance_id,
                body,
                envelope.id,
                persistent=False,
                expiration=ttl,
                kind=message.method,
            )
        except (BrokerUnavailable, NoConsumerQueue) as exc:
            raise errors.ServiceUnavailable("The message bus is unavailable.") from exc

    def add_guest_queues(self, instance_id: str) -> None:
        """The instance's queues and exchange (`trove_wire.topology.declare_guest`)."""
        try:
            self._publisher().declare(lambda ch: topology.declare_guest(ch, instance_id))
        except BrokerUnavailable as exc:
            raise errors.ServiceUnavailable("The message bus is unavailable.") from exc

    def delete_guest_queues(self, instance_id: str) -> None:
        try:
            self._publisher().declare(lambda ch: topology.delete_guest(ch, instance_id))
        except BrokerUnavailable as exc:
            raise errors.ServiceUnavailable("The message bus is unavailable.") from exc

    def check(self) -> str:
        """The broker node this process reaches (`host:port`); ServiceUnavailable unless
        one answers."""
        try:
            return self._publisher().check()
        except BrokerUnavailable as exc:
            raise errors.ServiceUnavailable("RabbitMQ does not answer.") from exc

    def close(self) -> None:
        publisher = getattr(self._local, "publisher", None)
        if publisher is not None:
            publisher.close()
            self._local.publisher = None
