"""What a deployment has on the broker, by name, and who declares it.

Every deployment has a vhost of its own, so the names below never meet another
deployment's. The control plane declares everything; a guest declares nothing and may
only consume its own queue and publish to `FROM_GUEST`.

- `TASKMANAGER`: casts to the task managers (a quorum queue). A message redelivered
  `MAX_DELIVERIES` times without being acked (`MAX_ATTEMPTS` deliveries in all) is
  dead-lettered to `TASKMANAGER_DEAD`.
- `TO_GUEST`: calls to guests, routed by instance id to `guestagent.<id>`.
- `FROM_GUEST`: everything a guest sends: reports (routed to `CONDUCTOR`) and replies
  (routed to the caller's reply queue). Never the default exchange, which reaches every
  queue of the vhost.
"""

from __future__ import annotations

from typing import Any

TASKMANAGER = "taskmanager"
TASKMANAGER_DEAD = "taskmanager.dead"
DEAD_LETTERS = "dead-letters"
CONDUCTOR = "conductor"
TO_GUEST = "guest.in"
FROM_GUEST = "guest.out"
# The quorum queues' x-delivery-limit: redeliveries allowed after the first delivery.
MAX_DELIVERIES = 5
MAX_ATTEMPTS = MAX_DELIVERIES + 1

_QUORUM = {"x-queue-type": "quorum"}


def guest_queue(instance_id: str) -> str:
    return f"guestagent.{instance_id}"


def declare_control_plane(channel: Any) -> None:
    """Exchanges and queues every control-plane process may rely on (idempotent)."""
    channel.exchange_declare(DEAD_LETTERS, "direct", durable=True)
    channel.queue_declare(TASKMANAGER_DEAD, durable=True, arguments=_QUORUM)
    channel.queue_bind(TASKMANAGER_DEAD, DEAD_LETTERS, routing_key=TASKMANAGER)
    channel.queue_declare(
        TASKMANAGER,
        durable=True,
        arguments={
            **_QUORUM,
            "x-delivery-limit": MAX_DELIVERIES,
            "x-dead-letter-exchange": DEAD_LETTERS,
            "x-dead-letter-routing-key": TASKMANAGER,
        },
    )
    channel.exchange_declare(TO_GUEST, "direct", durable=True)
    channel.exchange_declare(FROM_GUEST, "direct", durable=True)
    channel.queue_declare(
        CONDUCTOR, durable=True, arguments={**_QUORUM, "x-delivery-limit": MAX_DELIVERIES}
    )
    channel.queue_bind(CONDUCTOR, FROM_GUEST, routing_key=CONDUCTOR)


def declare_guest_queue(channel: Any, instance_id: str) -> None:
    """The queue an instance's guest consumes; made before the guest starts."""
    queue = guest_queue(instance_id)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, TO_GUEST, routing_key=instance_id)
