"""Prometheus metrics, through prometheus_client in multiprocess mode.

Every process of a deployment on one host (gunicorn's workers, the task manager, the
conductor) writes its samples to one directory; whoever serves `/metrics` reads them all.
prometheus_client decides on multiprocess mode when it is first imported, so `configure`
runs in each entry point before anything imports it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee

_ENV = "PROMETHEUS_MULTIPROC_DIR"
_metrics: Metrics | None = None
_directory: Path | None = None

# Seconds: an API request (5 ms .. 30 s) and a task's Ansible run (1 s .. 20 min).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TASK_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)


def configure(directory: Path, fresh: bool = False) -> None:
    """Point prometheus_client at `directory`; `fresh` empties it (a deployment's start)."""
    if fresh:
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    global _directory
    _directory = directory
    # prometheus_client, and the processes this one starts, read it from the environment.
    os.environ[_ENV] = str(directory)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Histogram(
            "trove_api_requests_seconds",
            "API requests by route template, method and status, with their latency.",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=None,
        )
        self.tasks = Histogram(
            "trove_tasks_seconds",
            "Tasks by action and outcome, with how long their runs took.",
            ["action", "outcome"],
            buckets=TASK_BUCKETS,
            registry=None,
        )
        self.heartbeats = Counter(
            "trove_heartbeats",
            "Guest heartbeats: recorded, or dropped as stale.",
            ["outcome"],
            registry=None,
        )
        self.refused = Counter(
            "trove_messages_refused",
            "Messages refused by a receiver, by reason (auth, replay, clock, key, malformed).",
            ["receiver", "reason"],
            registry=None,
        )
        self.reports_rate_limited = Counter(
            "trove_reports_rate_limited",
            "Guest reports dropped unopened: their guest sent more than TROVE_SVC_REPORT_RATE.",
            registry=None,
        )
        self.reports_dead_lettered = Counter(
            "trove_reports_dead_lettered",
            "Guest reports that failed on every delivery, given up to the dead-letter queue.",
            registry=None,
        )
        # Read from the broker by the conductor every few seconds.
        self.reports_queued = Gauge(
            "trove_reports_queued",
            "Guest reports waiting in the guests' queues for a conductor.",
            multiprocess_mode="mostrecent",
            registry=None,
        )
        self.report_queues_full = Gauge(
            "trove_report_queues_full",
            "Guests whose queue holds TROVE_SVC_REPORT_BACKLOG reports: the broker refuses "
            "their new ones.",
            multiprocess_mode="mostrecent",
            registry=None,
        )
        self.reports_dead_letters = Gauge(
            "trove_reports_dead_letters",
            "Guest reports kept in the dead-letter queue.",
            multiprocess_mode="mostrecent",
            registry=None,
        )


def get() -> Metrics:
    """The process's metrics (made on first use, after `configure`)."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


class _InstanceCollector:
    """Instances by status and datastore, counted in the store when scraped."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from trove_svc.store.models import Datastore, DatastoreVersion, Instance

        family = GaugeMetricFamily(
            "trove_instances", "Instances by status and datastore.", labels=["status", "datastore"]
        )
        rows = (
            Instance.select(Instance.status, Datastore.name, peewee.fn.COUNT(Instance.id))
            .join(DatastoreVersion)
            .join(Datastore)
            .group_by(Instance.status, Datastore.name)
            .tuples()
        )
        for state, datastore, count in rows:
            family.add_metric([state, datastore], count)
        yield family


def _registry() -> Any:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if _directory is not None:
        MultiProcessCollector(registry, path=str(_directory))  # type: ignore[no-untyped-call]
    registry.register(_InstanceCollector())
    return registry


def exposition() -> tuple[bytes, str]:
    """Everything this host's processes recorded, and the instances, in the text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def serve(port: int, address: str = "127.0.0.1") -> None:
    """Serve /metrics on `port` from this process (a task manager or conductor run alone)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=address, registry=_registry())


def mark_process_dead(pid: int) -> None:
    """gunicorn's `child_exit` hook: a worker's live gauges go with it."""
    from prometheus_client import multiprocess

    if _directory is not None:
        multiprocess.mark_process_dead(pid, path=str(_directory))  # type: ignore[no-untyped-call]
