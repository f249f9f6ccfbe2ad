"""The unchanged `openstack database ...` client (python-troveclient) against trove-svc."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from openstackclient import shell as openstack_shell

from tests import support
from tests.deployments import wait_until
from trove_wire import datastores as registry

pytestmark = [pytest.mark.integration, pytest.mark.long]

PROJECT = "cli"


def _address(shown: dict[str, Any]) -> str:
    """The address `openstack database instance show` gives (the client joins the list)."""
    address = str(shown["ip"])
    assert "," not in address, address
    return address


def _client(argv: list[str]) -> tuple[int, str, str]:
    """Run the installed `openstack` command's own entry point with `argv`, in this process:
    the same client code, without a start-up per command (about 1.3 s of a core each)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = openstack_shell.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def osc(service: support.Service) -> Callable[..., Any]:
    token = service.token(PROJECT)

    def run(*args: str, parse: bool = True, fails: bool = False) -> Any:
        argv = [
            "--os-auth-type",
            "admin_token",
            "--os-token",
            token,
            "--os-endpoint",
            f"{service.url}/v1.0/{PROJECT}",
            # The datastore commands stand alone; every other one is under "database".
            *([] if args[0] == "datastore" else ["database"]),
            *args,
            *(["-f", "json"] if parse else []),
        ]
        code, out, err = _client(argv)
        if fails:
            assert code != 0, f"{args} should have failed: {out}"
            return err
        assert code == 0, f"{args}: {err}"
        return json.loads(out) if parse else out

    run.service = service  # type: ignore[attr-defined]
    run.token = token  # type: ignore[attr-defined]
    return run


# The commands under test go through the client; waiting for their effect polls the API
# directly, as a client start-up per poll would spend a core on waiting.


def _api(osc: Callable[..., Any], path: str) -> Any:
    resp = osc.service.request(  # type: ignore[attr-defined]
        "GET",
        f"/v1.0/{PROJECT}{path}",
        osc.token,  # type: ignore[attr-defined]
    )
    assert resp.status == 200, (path, resp.status, resp.body)
    return resp.body


def _instance_named(osc: Callable[..., Any], name: str) -> dict[str, Any] | None:
    found = [i for i in _api(osc, "/instances")["instances"] if i["name"] == name]
    return found[0] if found else None


def _wait(osc: Callable[..., Any], name: str, status: str) -> dict[str, Any]:
    """Wait over the API until `name` is `status` and HEALTHY, then show it with the client."""

    def reached() -> bool:
        listed = _instance_named(osc, name)
        if listed is None:
            return False
        shown = _api(osc, f"/instances/{listed['id']}")["instance"]
        assert shown["status"] != "ERROR", shown
        return bool(shown["status"] == status and shown.get("operating_status") == "HEALTHY")

    wait_until(reached, 120, f"{name} reaching {status}")
    shown: dict[str, Any] = osc("instance", "show", name)
    return shown


def test_catalog_commands(osc: Callable[..., Any]) -> None:
    # Once through the installed command itself, as a user runs it.
    installed = subprocess.run(
        [
            str(support.VENV_BIN / "openstack"),
            "--os-auth-type",
            "admin_token",
            "--os-token",
            osc.token,  # type: ignore[attr-defined]
            "--os-endpoint",
            f"{osc.service.url}/v1.0/{PROJECT}",  # type: ignore[attr-defined]
            "datastore",
            "list",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    datastores = json.loads(installed.stdout)
    assert datastores == osc("datastore", "list")
    assert [d["Name"] for d in datastores] == sorted(registry.REGISTRY)
    versions = osc("datastore", "version", "list", "postgresql")
    assert len(versions) == 1 and versions[0]["Name"].isdigit()
    flavors = osc("flavor", "list")
    assert {(f["ID"], f["RAM"]) for f in flavors} == {("1", 512), ("2", 1024), ("3", 2048)}
    flavor = osc("flavor", "show", "2")
    assert flavor["ram"] == 1024 and flavor["vcpus"] == 1
    # The client prints the absolute limits as a table of its own, then the rate limits.
    limits = osc("limit", "list", parse=False)
    assert re.search(r"\|\s*max_instances\s*\|\s*10\s*\|", limits), limits
    assert re.search(r"\|\s*max_volumes\s*\|\s*40\s*\|", limits), limits


def test_instance_lifecycle_through_the_client(osc: Callable[..., Any]) -> None:
    version = osc("datastore", "version", "list", "postgresql")[0]["Name"]
    created = osc(
        "instance",
        "create",
        "cli-one",
        "--flavor",
        "1",
        "--size",
        "1",
        "--datastore",
        "postgresql",
        "--datastore-version",
        version,
        "--databases",
        "appdb",
        "--users",
        "app:App-pw-123-long",
    )
    assert created["status"] == "BUILD" and created["name"] == "cli-one"
    shown = _wait(osc, "cli-one", "ACTIVE")
    assert [i["Name"] for i in osc("instance", "list")] == ["cli-one"]

    osc("instance", "update", "cli-one", "--name", "cli-renamed", parse=False)
    assert osc("instance", "show", "cli-renamed")["id"] == shown["id"]

    osc("db", "create", "cli-renamed", "reports", parse=False)
    assert {d["Name"] for d in osc("db", "list", "cli-renamed")} == {"appdb", "reports"}
    osc("db", "delete", "cli-renamed", "reports", parse=False)
    assert {d["Name"] for d in osc("db", "list", "cli-renamed")} == {"appdb"}

    osc(
        "user",
        "create",
        "cli-renamed",
        "bob",
        "Bob-pw-456-long",
        "--databases",
        "appdb",
        parse=False,
    )
    assert "bob" in {u["Name"] for u in osc("user", "list", "cli-renamed")}
    assert osc("user", "show", "cli-renamed", "bob")["name"] == "bob"
    osc("db", "create", "cli-renamed", "extra", parse=False)
    osc("user", "grant", "access", "cli-renamed", "bob", "extra", parse=False)
    access = {d["Name"] for d in osc("user", "show", "access", "cli-renamed", "bob")}
    assert access == {"appdb", "extra"}
    osc("user", "revoke", "access", "cli-renamed", "bob", "extra", parse=False)
    assert {d["Name"] for d in osc("user", "show", "access", "cli-renamed", "bob")} == {"appdb"}
    osc("user", "delete", "cli-renamed", "bob", parse=False)
    assert "bob" not in {u["Name"] for u in osc("user", "list", "cli-renamed")}

    root = osc("root", "enable", "cli-renamed")
    assert root["name"] == "root" and root["password"]
    assert osc("root", "show", "cli-renamed")["is_root_enabled"] is True
    osc("root", "disable", "cli-renamed", parse=False)
    assert osc("root", "show", "cli-renamed")["is_root_enabled"] is False

    with psycopg.connect(
        host=_address(shown),
        port=shown["port"],
        user="app",
        password="App-pw-123-long",
        dbname="appdb",
        autocommit=True,
    ) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before restart')")
    osc("instance", "restart", "cli-renamed", parse=False)
    assert osc("instance", "show", "cli-renamed")["status"] in ("REBOOT", "ACTIVE")
    _wait(osc, "cli-renamed", "ACTIVE")
    with psycopg.connect(
        host=_address(shown),
        port=shown["port"],
        user="app",
        password="App-pw-123-long",
        dbname="appdb",
    ) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before restart",)]

    _configuration_group(osc, shown["id"])
    _replica_made_and_detached(osc, shown["id"])
    _backup_and_restore(osc, shown["id"])

    osc("instance", "delete", "cli-renamed", parse=False)
    wait_until(lambda: not _api(osc, "/instances")["instances"], 120, "the instances stayed")
    assert osc("instance", "list") == []
    assert osc("backup", "list") == []


def _replica_made_and_detached(osc: Callable[..., Any], source_id: str) -> None:
    """A replica made through the client, shown as its source's, refused an eject while its
    source is healthy, detached to stand alone, and deleted: the source ends as it began.
    (A promotion, which the client sends as test_replicas does, is that test's.)"""
    created = osc("instance", "create", "cli-replica", "--replica-of", "cli-renamed")
    assert created["status"] == "BUILD"
    replica = _wait(osc, "cli-replica", "ACTIVE")
    assert replica["replica_of"] == source_id
    assert osc("instance", "show", "cli-renamed")["replicas"] == replica["id"]
    refused = osc("instance", "eject", "cli-renamed", parse=False, fails=True)
    assert "healthy" in refused or "409" in refused, refused
    osc("instance", "detach", "cli-replica", parse=False)
    wait_until(
        lambda: "replica_of" not in _api(osc, f"/instances/{replica['id']}")["instance"],
        120,
        "the detach",
    )
    _wait(osc, "cli-replica", "ACTIVE")
    assert "replica_of" not in osc("instance", "show", "cli-replica")
    assert "replicas" not in osc("instance", "show", "cli-renamed")
    osc("instance", "delete", "cli-replica", parse=False)
    wait_until(lambda: _instance_named(osc, "cli-replica") is None, 120, "the replica gone")
    assert "cli-replica" not in {i["Name"] for i in osc("instance", "list")}


def _configuration_group(osc: Callable[..., Any], instance_id: str) -> None:
    version = osc("datastore", "version", "list", "postgresql")[0]["Name"]
    parameters = osc("configuration", "parameter", "list", version, "--datastore", "postgresql")
    assert "work_mem" in {p["Name"] for p in parameters}
    refused = osc(
        "configuration",
        "create",
        "bad",
        '{"work_mem": "lots"}',
        "--datastore",
        "postgresql",
        parse=False,
        fails=True,
    )
    assert "work_mem" in refused
    made = osc(
        "configuration",
        "create",
        "tuned",
        '{"work_mem": 12345}',
        "--datastore",
        "postgresql",
        "--datastore-version",
        version,
    )
    assert [c["ID"] for c in osc("configuration", "list")] == [made["id"]]
    osc("configuration", "attach", "cli-renamed", made["id"], parse=False)
    assert _work_mem(osc, instance_id) == "12345"  # live when the attach answers
    assert osc("configuration", "default", "cli-renamed")["work_mem"] == "12345"
    members = osc("configuration", "instances", made["id"])
    assert [m["ID"] for m in members] == [instance_id]
    assert osc("configuration", "show", made["id"])["values"] == '{"work_mem": 12345}'
    osc("configuration", "detach", "cli-renamed", parse=False)
    assert osc("configuration", "instances", made["id"]) == []
    assert _work_mem(osc, instance_id) != "12345"  # gone when the detach answers
    assert osc("configuration", "default", "cli-renamed").get("work_mem") != "12345"
    osc("configuration", "delete", made["id"], parse=False)
    assert osc("configuration", "list") == []


def _backup_and_restore(osc: Callable[..., Any], instance_id: str) -> None:
    made = osc("backup", "create", "nightly", "--instance", "cli-renamed")
    assert made["name"] == "nightly" and made["instance_id"] == instance_id
    wait_until(lambda: _backup_status(osc, made["id"]) == "COMPLETED", 120, "the backup")
    assert osc("backup", "show", made["id"])["status"] == "COMPLETED"
    _wait(osc, "cli-renamed", "ACTIVE")
    assert [b["ID"] for b in osc("backup", "list")] == [made["id"]]
    assert [b["ID"] for b in osc("backup", "list", "instance", "cli-renamed")] == [made["id"]]
    incremental = osc("backup", "create", "later", "--instance", "cli-renamed", "--incremental")
    assert incremental["parent_id"] == made["id"]
    wait_until(
        lambda: _backup_status(osc, incremental["id"]) == "COMPLETED", 120, "the incremental"
    )
    _wait(osc, "cli-renamed", "ACTIVE")

    osc(
        "instance",
        "create",
        "cli-restored",
        "--flavor",
        "1",
        "--size",
        "1",
        "--backup",
        incremental["id"],
    )
    restored = _wait(osc, "cli-restored", "ACTIVE")
    with psycopg.connect(
        host=_address(restored),
        port=restored["port"],
        user="app",
        password="App-pw-123-long",
        dbname="appdb",
    ) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before restart",)]
    osc("instance", "delete", "cli-restored", parse=False)
    # The client says only that it could not (test_backups reads the reason): the full
    # backup is the incremental's base. Once that is gone, the newest full backup of the
    # live instance goes from the tenant's view (its tool keeps its data meanwhile).
    assert "Unable to delete" in osc("backup", "delete", made["id"], parse=False, fails=True)
    _delete_backups(osc, [incremental["id"], made["id"]])


def _delete_backups(osc: Callable[..., Any], newest_first: list[str]) -> None:
    for backup_id in newest_first:
        osc("backup", "delete", backup_id, parse=False)
        wait_until(
            lambda gone=backup_id: gone not in {b["id"] for b in _api(osc, "/backups")["backups"]},
            120,
            f"backup {backup_id} gone",
        )
        assert backup_id not in {b["ID"] for b in osc("backup", "list")}


def _work_mem(osc: Callable[..., Any], instance_id: str) -> Any:
    return _api(osc, f"/instances/{instance_id}/configuration")["instance"]["configuration"].get(
        "work_mem"
    )


def _backup_status(osc: Callable[..., Any], backup_id: str) -> Any:
    return _api(osc, f"/backups/{backup_id}")["backup"]["status"]
