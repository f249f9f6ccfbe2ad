"""The guest's side of backups: one at a time, in the background, its progress reported
to the conductor (BUILDING, SAVING, then COMPLETED or FAILED). A report that cannot be sent
(the bus is down) is sent again until it goes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from trove_guest.backups import BackupFailed, Engine, load_engine
from trove_guest.config import GuestConfig
from trove_wire import contract

LOG = logging.getLogger(__name__)

Report = Callable[[contract.BackupReport], bool]


class BackupRunner:
    def __init__(self, config: GuestConfig, report: Report) -> None:
        self._config = config
        self._report = report
        self._running: threading.Thread | None = None
        self._lock = threading.Lock()
        self._engine: Engine | None = None

    def _engine_for_instance(self) -> Engine:
        if not self._config.backup:
            raise contract.NotSupported(f"{self._config.datastore} keeps no backups here.")
        if self._engine is None:
            self._engine = load_engine(
                self._config.datastore, self._config.backup, self._config.connection
            )
        return self._engine

    def start_backup(
        self, backup_id: str, kind: str, parent_label: str | None = None
    ) -> dict[str, Any]:
        engine = self._engine_for_instance()
        with self._lock:
            if self._running is not None and self._running.is_alive():
                raise contract.Conflict("Another backup of this instance is running.")
            self._running = threading.Thread(
                target=self._back_up,
                args=(engine, backup_id, kind, parent_label),
                name=f"backup-{backup_id}",
                daemon=True,
            )
            self._running.start()
        return {"started": backup_id}

    def remove_backup(self, backup_id: str, label: str) -> dict[str, Any]:
        engine = self._engine_for_instance()
        with self._lock:
            if self._running is not None and self._running.is_alive():
                raise contract.Conflict("A backup of this instance is running.")
            try:
                engine.remove(backup_id, label)
            except (BackupFailed, ValueError) as exc:
                raise contract.GuestError(str(exc)[:1000]) from exc
        return {"removed": backup_id}

    def archive_logs(self) -> dict[str, Any]:
        try:
            return self._engine_for_instance().archive_logs()
        except BackupFailed as exc:
            raise contract.GuestError(str(exc)) from exc

    def _send(self, report: contract.BackupReport) -> None:
        deadline = time.monotonic() + 600
        while not self._report(report) and time.monotonic() < deadline:
            time.sleep(2)

    def _back_up(self, engine: Engine, backup_id: str, kind: str, parent_label: str | None) -> None:
        self._send(contract.BackupReport(backup_id=backup_id, state="BUILDING"))
        try:
            made = engine.backup(backup_id, kind, parent_label)
        except (BackupFailed, OSError) as exc:
            LOG.error("backup %s failed: %s", backup_id, exc)
            message = str(exc)[: contract.MESSAGE_MAX]
            self._send(contract.BackupReport(backup_id=backup_id, state="FAILED", message=message))
            return
        except Exception as exc:
            LOG.exception("backup %s failed", backup_id)
            message = f"the guest failed: {type(exc).__name__}"
            self._send(contract.BackupReport(backup_id=backup_id, state="FAILED", message=message))
            return
        # Made: the control plane stores it where its strategy says, then calls it COMPLETED.
        self._send(
            contract.BackupReport(
                backup_id=backup_id,
                state="SAVING",
                label=made.label,
                tool=made.tool,
                size=made.size,
                checksum=made.checksum,
                consistent_at=made.consistent_at,
                details=made.details,
            )
        )
        LOG.info("backup %s completed: %d bytes", backup_id, made.size)
