"""Placement on the ssh provider's pool: room first, a replica away from its source, 409
when nothing fits, and hosts that stopped answering skipped until they answer."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trove_svc import compute
from trove_svc.compute import placement, pool
from trove_svc.domain import catalog, errors
from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Flavor, Instance

POOL = """
all:
  vars: {{ansible_user: root, ansible_port: {port}}}
  hosts:
    big: {{ansible_host: 127.0.0.1, trove_memory_mb: 2048, trove_disk_gb: 10}}
    small: {{ansible_host: 127.0.0.1, trove_memory_mb: 1024, trove_disk_gb: 2}}
"""


@pytest.fixture
def listening() -> Iterator[int]:
    """A port that answers, as a pool host's sshd would."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path, listening: int) -> Iterator[Settings]:
    pool_file = tmp_path / "pool.yml"
    pool_file.write_text(POOL.format(port=listening))
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults(catalog.host_datastores())
    yield Settings(state_dir=tmp_path, compute_provider="ssh", host_pool=str(pool_file))
    database.close()


def _place(
    settings: Settings, flavor_id: str, volume_gb: int = 1, source: Instance | None = None
) -> Instance:
    flavor = Flavor.get_by_id(flavor_id)
    columns = compute.new_place(settings, flavor, volume_gb, source)
    count = Instance.select().count()
    return Instance.create(
        **columns,
        id=f"i-{count}",
        name=f"i-{count}",
        project_id="p",
        datastore_version=DatastoreVersion.select().first(),
        flavor=flavor,
        volume_size=volume_gb,
        status="BUILD",
        created_at=0,
        updated_at=0,
    )


def test_most_free_memory_first_then_fewer_instances(settings: Settings) -> None:
    first = _place(settings, "2")  # 1024 MB: big has 2048 free, small 1024
    assert (first.server, first.host) == ("big", "127.0.0.1")
    second = _place(settings, "1")  # 1024 free on each: the one with no instance
    assert second.server == "small"
    third = _place(settings, "1")  # big 1024 free, small 512
    assert third.server == "big"


def test_a_replica_goes_elsewhere_when_another_host_has_room(settings: Settings) -> None:
    source = _place(settings, "1")
    assert source.server == "big"
    replica = _place(settings, "1", source=source)
    assert replica.server == "small"
    # With no room elsewhere, a replica shares its source's host.
    # Free: big 1536, small 512.
    assert [_place(settings, "1").server for _ in range(3)] == ["big", "big", "small"]
    # Free: big 512, small 0.
    assert _place(settings, "1", source=source).server == "big"


def test_nothing_fits_answers_409_and_logs_each_hosts_room(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    with pytest.raises(errors.Conflict) as refused:
        _place(settings, "3", volume_gb=11)  # 2048 MB fits big, 11 GB fits nowhere
    # The tenant learns what did not fit; the pool's hosts are the operator's to see.
    assert refused.value.message == (
        "No host in the pool has room for flavor large (2048 MB) and a 11 GB volume."
    )
    assert "big: 2048 MB memory, 10 GB disk free" in caplog.text
    assert Instance.select().count() == 0


def test_an_unreachable_host_is_skipped_until_it_answers(
    settings: Settings, tmp_path: Path
) -> None:
    placement.mark_unreachable("big", 1.0, "ssh: connect to host: Connection refused")
    # big answers on its port again: the mark goes, and big is used.
    assert _place(settings, "1").server == "big"
    hosts = compute.pool.hosts(settings.host_pool)
    assert [u.unreachable_since for u in placement.use_of(hosts)] == [None, None]

    # A host whose port does not answer stays skipped, though it has the most room.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    silent = tmp_path / "silent-pool.yml"
    silent.write_text(POOL.format(port=dead_port))
    silent_settings = settings.with_overrides(host_pool=str(silent))
    placement.mark_unreachable("big", 2.0, "timed out")
    placement.mark_unreachable("small", 2.0, "timed out")
    with pytest.raises(errors.Conflict, match="with room for this instance answers"):
        _place(silent_settings, "1")
    placement.mark_reachable("small")
    assert _place(silent_settings, "1").server == "small"


def test_two_creates_at_once_never_both_take_a_hosts_last_room(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first to read a host's use holds the placement lock until its row is in."""
    _place(settings, "2")  # big: 1024 of 2048 used; small: 0 of 1024
    _place(settings, "2")  # small full; big has room for one more medium instance
    read_use = placement.use_of
    both_reading = threading.Barrier(2, timeout=2)

    def slow_use_of(hosts: list[pool.PoolHost]) -> list[placement.HostUse]:
        found = read_use(hosts)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_reading.wait()  # without the lock both would read the same room
        return found

    monkeypatch.setattr(placement, "use_of", slow_use_of)
    outcomes: list[str] = []

    def create() -> None:
        try:
            with compute.placing(settings):
                outcomes.append(str(_place(settings, "2").server))
        except errors.Conflict:
            outcomes.append("409")

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["409", "big"]
