"""What a deployment has on the broker, by name, and who declares it.

Every deployment has a vhost of its own, so the names below never meet another
deployment's. The control plane declares everything; a guest declares nothing and may
only consume its own queue and publish to its own exchange.

- `TASKMANAGER`: casts to the task managers (a quorum queue). A message redelivered
  `MAX_DELIVERIES` times without being acked (`MAX_ATTEMPTS` deliveries in all) is
  dead-lettered to `TASKMANAGER_DEAD`.
- `TO_GUEST`: calls to guests, routed by instance id to `guestagent.<id>` (a quorum queue,
  so that on a RabbitMQ cluster a guest is reached while any majority of the nodes runs;
  instances made before it was one keep the classic queue they were made with).
- `guest.out.<id>` (`guest_exchange`): everything one guest sends, and the only exchange
  its account may write: reports (routing key `REPORTS`, to `reports.<id>`, which the
  conductors consume) and replies (routed to the caller's reply queue, which the caller
  binds there). Never the default exchange, which reaches every queue of the vhost; never
  one shared with other guests, so one guest's flood fills its own queue only.
- `reports.<id>` (`reports_queue`): a quorum queue per guest. Its length limit (new
  reports refused once full, old ones kept), its delivery limit and its dead-lettering to
  `REPORTS_DEAD` come from a broker policy that `trove-svc setup` sets on every queue
  named `REPORTS_PREFIX...` (`trove_svc.bus.broker.report_queue_policy`), so the limits
  can change without remaking queues.
"""

from __future__ import annotations

from typing import Any

TASKMANAGER = "taskmanager"
TASKMANAGER_DEAD = "taskmanager.dead"
DEAD_LETTERS = "dead-letters"
TO_GUEST = "guest.in"
GUEST_EXCHANGE_PREFIX = "guest.out."
REPORTS = "reports"
REPORTS_PREFIX = "reports."
REPORTS_DEAD = "conductor.dead"
# Reports given up on are kept for a look, up to this many (the oldest go first).
REPORTS_DEAD_KEPT = 10_000
# The quorum queues' delivery limit: redeliveries allowed after the first delivery.
MAX_DELIVERIES = 5
MAX_ATTEMPTS = MAX_DELIVERIES + 1

_QUORUM = {"x-queue-type": "quorum"}


def guest_queue(instance_id: str) -> str:
    return f"guestagent.{instance_id}"


def guest_exchange(instance_id: str) -> str:
    return f"{GUEST_EXCHANGE_PREFIX}{instance_id}"


def reports_queue(instance_id: str) -> str:
    return f"{REPORTS_PREFIX}{instance_id}"


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
    channel.queue_declare(
        REPORTS_DEAD, durable=True, arguments={**_QUORUM, "x-max-length": REPORTS_DEAD_KEPT}
    )
    channel.queue_bind(REPORTS_DEAD, DEAD_LETTERS, routing_key=REPORTS)


def declare_guest(channel: Any, instance_id: str) -> None:
    """An instance's queues and exchange; made before its guest starts."""
    queue = guest_queue(instance_id)
    channel.queue_declare(queue, durable=True, arguments=_QUORUM)
    channel.queue_bind(queue, TO_GUEST, routing_key=instance_id)
    exchange = guest_exchange(instance_id)
    channel.exchange_declare(exchange, "direct", durable=True)
    reports = reports_queue(instance_id)
    channel.queue_declare(reports, durable=True, arguments=_QUORUM)
    channel.queue_bind(reports, exchange, routing_key=REPORTS)


def delete_guest(channel: Any, instance_id: str) -> None:
    """What `declare_guest` made; what is gone already counts as deleted."""
    channel.queue_delete(queue=guest_queue(instance_id))
    channel.queue_delete(queue=reports_queue(instance_id))
    channel.exchange_delete(exchange=guest_exchange(instance_id))
