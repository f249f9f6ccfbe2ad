"""The compute_openstack role run through ansible-runner against a replay of the OpenStack
APIs (tests/openstack_replay.py): what it asks the cloud for on create and on teardown,
and what it cleans up when a create fails half way."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from tests.openstack_replay import Call, OpenStackReplay
from trove_svc import compute
from trove_svc.process.settings import Settings
from trove_svc.taskmanager.runner import PlaybookRunner

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PORTS = range(26000, 26100)
NAME = "trove-5b0e7c1d"
ROLE_VARS = {
    "compute_openstack_cloud": "replay",
    "compute_openstack_name": NAME,
    "compute_openstack_flavor": "m1.small",
    "compute_openstack_image": "debian-12",
    "compute_openstack_network": "private",
    "compute_openstack_volume_size": 5,
    "compute_openstack_port": 5432,
    "compute_openstack_allowed_cidrs": ["10.1.0.0/16", "2001:db8::/64"],
    "compute_openstack_ssh_cidrs": ["192.0.2.10/32"],
    "compute_openstack_timeout": 30,
}
NOTHING: dict[str, list[str]] = {"servers": [], "volumes": [], "security_groups": [], "ports": []}


@dataclass
class Run:
    status: str
    events: list[dict[str, Any]]

    def reported(self) -> dict[str, Any]:
        """What the run's set_stats reported."""
        for event in self.events:
            if event["event"] == "playbook_on_stats":
                data: dict[str, Any] = event["event_data"].get("artifact_data") or {}
                return data
        raise AssertionError("the run ended without stats")

    def failure(self) -> str:
        """The message of the run's last failed task."""
        failed = [e for e in self.events if e["event"] == "runner_on_failed"]
        assert failed, "no task failed"
        message: str = failed[-1]["event_data"]["res"].get("msg", "")
        return message

    def changed(self) -> list[str]:
        return [
            e["event_data"]["task"]
            for e in self.events
            if e["event"] == "runner_on_ok" and e["event_data"]["res"].get("changed")
        ]


class Cloud:
    """The replay, and the role run against it from a private data dir per run."""

    def __init__(self, replay: OpenStackReplay, tmp_path: Path) -> None:
        self.replay = replay
        self.tmp_path = tmp_path
        self.runs = 0
        self.clouds_yaml = tmp_path / "clouds.yaml"
        clouds = {
            "clouds": {
                "replay": {
                    "auth": {
                        "auth_url": replay.auth_url,
                        "username": replay.username,
                        "password": replay.password,
                        "project_name": replay.project_name,
                        "user_domain_name": "Default",
                        "project_domain_name": "Default",
                    },
                    "region_name": "RegionOne",
                    "identity_api_version": 3,
                }
            }
        }
        self.clouds_yaml.write_text(json.dumps(clouds))
        self.clouds_yaml.chmod(0o600)

    def run(self, entry_point: str, **overrides: Any) -> Run:
        """Run one of the role's entry points (named without .yml, so its argument spec
        is checked)."""
        self.runs += 1
        data_dir = self.tmp_path / f"run-{self.runs}"
        data_dir.mkdir()
        play = [
            {
                "name": "Place the instance",
                "hosts": "instance",
                "gather_facts": False,
                "tasks": [
                    # As instance_create.yml runs the provider's role: in the host's own
                    # Python (which has no openstacksdk); the cloud tasks must run in the
                    # controller's.
                    {
                        "name": "Use the host's own Python",
                        "ansible.builtin.set_fact": {"trove_python": "/usr/bin/python3"},
                    },
                    {
                        "name": "Run compute_openstack",
                        "ansible.builtin.include_role": {
                            "name": "compute_openstack",
                            "tasks_from": entry_point,
                        },
                        "vars": {**ROLE_VARS, **overrides},
                    },
                ],
            }
        ]
        playbook = data_dir / "site.yml"
        playbook.write_text(json.dumps(play))
        runner = ansible_runner.run(
            private_data_dir=str(data_dir),
            playbook=str(playbook),
            inventory={
                "all": {
                    "hosts": {
                        "instance": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": "{{ trove_python }}",
                        }
                    }
                }
            },
            # As the task manager runs it: its environment (mitogen's strategy, the roles),
            # and what the openstack provider adds to it.
            envvars={
                **PlaybookRunner(Settings(state_dir=self.tmp_path)).environment(),
                "PYTHONPATH": str(ROOT / compute.OPENSTACK_SDK_SHIM),
                "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml),
                "ANSIBLE_NOCOLOR": "1",
            },
            quiet=True,
            suppress_env_files=True,
            timeout=120,
        )
        return Run(status=str(runner.status), events=list(runner.events))


def _start_replay() -> OpenStackReplay:
    for port in PORTS:
        try:
            return OpenStackReplay(port).start()
        except OSError:
            continue
    raise RuntimeError(f"no free port in {PORTS}")


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    replay = _start_replay()
    try:
        yield Cloud(replay, tmp_path)
    finally:
        replay.stop()


def _ids(replay: OpenStackReplay) -> tuple[str, str, str]:
    (server,) = replay.created["servers"]
    (volume,) = replay.created["volumes"]
    (group,) = replay.created["security_groups"]
    return server, volume, group


def _rules(call: Call) -> set[tuple[Any, ...]]:
    return {
        (
            r["security_group_id"],
            r["direction"],
            r["ethertype"],
            r.get("protocol"),
            r.get("port_range_min"),
            r.get("port_range_max"),
            r.get("remote_ip_prefix"),
        )
        for r in call.body["security_group_rules"]
    }


def test_create_makes_group_volume_server_and_attachment_then_teardown_removes_them(
    cloud: Cloud,
) -> None:
    replay = cloud.replay
    created = cloud.run("cloud")
    assert created.status == "successful", [
        e["event_data"].get("res") for e in created.events if e["event"] == "runner_on_failed"
    ]
    server_id, volume_id, group_id = _ids(replay)
    (network_id,) = replay.networks
    (image_id,) = replay.images
    calls = replay.changes()
    assert [(c.method, c.service, c.path) for c in calls] == [
        ("POST", "network", "/v2.0/security-groups"),
        ("POST", "network", "/v2.0/security-group-rules"),
        ("POST", "volume", f"/v3/{replay.project_id}/volumes"),
        ("POST", "compute", "/v2.1/servers"),
        ("POST", "compute", f"/v2.1/servers/{server_id}/os-volume_attachments"),
    ]
    group, rules, volume, server, attachment = calls
    assert group.body["security_group"]["name"] == NAME
    # Neutron's own egress rules are kept; the ingress ones open the datastore's port to
    # the allowed networks and SSH to the control plane only.
    assert _rules(rules) == {
        (group_id, "ingress", "IPv4", "tcp", 5432, 5432, "10.1.0.0/16"),
        (group_id, "ingress", "IPv6", "tcp", 5432, 5432, "2001:db8::/64"),
        (group_id, "ingress", "IPv4", "tcp", 22, 22, "192.0.2.10/32"),
    }
    assert {
        (r["direction"], r["remote_ip_prefix"], r["port_range_min"])
        for r in replay.security_groups[group_id]["security_group_rules"]
    } == {
        ("egress", None, None),
        ("ingress", "10.1.0.0/16", 5432),
        ("ingress", "2001:db8::/64", 5432),
        ("ingress", "192.0.2.10/32", 22),
    }
    assert volume.body == {"volume": {"name": NAME, "size": 5}}
    requested = server.body["server"]
    assert requested["name"] == NAME
    assert requested["flavorRef"] == "2"  # m1.small
    assert requested["imageRef"] == image_id
    assert requested["networks"] == [{"uuid": network_id}]
    assert requested["security_groups"] == [{"name": group_id}]
    assert "key_name" not in requested
    assert attachment.body == {"volumeAttachment": {"volumeId": volume_id}}
    assert replay.volumes[volume_id]["status"] == "in-use"
    (port,) = replay.ports.values()
    address = port["fixed_ips"][0]["ip_address"]
    assert created.reported() == {
        "trove_place": {"server": server_id, "address": address, "volume": volume_id}
    }

    replay.clear_calls()
    again = cloud.run("cloud")
    assert again.status == "successful"
    assert replay.changes() == []
    assert again.changed() == []
    assert again.reported() == created.reported()

    kept = cloud.run("teardown", compute_openstack_purge=False)
    assert kept.status == "successful"
    assert replay.changes() == []

    removed = cloud.run("teardown", compute_openstack_purge=True)
    assert removed.status == "successful"
    assert [(c.method, c.service, c.path) for c in replay.changes()] == [
        ("DELETE", "compute", f"/v2.1/servers/{server_id}"),
        ("DELETE", "volume", f"/v3/{replay.project_id}/volumes/{volume_id}"),
        ("DELETE", "network", f"/v2.0/security-groups/{group_id}"),
    ]
    assert replay.leftovers() == NOTHING

    replay.clear_calls()
    second = cloud.run("teardown", compute_openstack_purge=True)
    assert second.status == "successful"
    assert replay.changes() == []
    assert second.changed() == []


def test_a_server_that_goes_to_error_is_removed_with_its_volume_and_group(cloud: Cloud) -> None:
    replay = cloud.replay
    replay.server_outcome = "ERROR"
    # Scheduling fails at once: the first read of the new server shows ERROR.
    replay.server_build_polls = 0
    failed = cloud.run("cloud")
    assert failed.status == "failed"
    message = failed.failure()
    assert "Create the server" in message
    assert "No valid host was found" in message
    assert "removed the server, volume and security group" in message
    (server_id,) = replay.created["servers"]
    (volume_id,) = replay.created["volumes"]
    (group_id,) = replay.created["security_groups"]
    assert [(c.method, c.service, c.path) for c in replay.changes()] == [
        ("POST", "network", "/v2.0/security-groups"),
        ("POST", "network", "/v2.0/security-group-rules"),
        ("POST", "volume", f"/v3/{replay.project_id}/volumes"),
        ("POST", "compute", "/v2.1/servers"),
        ("DELETE", "compute", f"/v2.1/servers/{server_id}"),
        ("DELETE", "volume", f"/v3/{replay.project_id}/volumes/{volume_id}"),
        ("DELETE", "network", f"/v2.0/security-groups/{group_id}"),
    ]
    assert replay.leftovers() == NOTHING


def test_a_volume_the_cloud_refuses_fails_the_create_and_removes_the_group(
    cloud: Cloud,
) -> None:
    replay = cloud.replay
    replay.fail_next("POST", "/v3/*/volumes", status=500, message="The backend is down.")
    failed = cloud.run("cloud")
    assert failed.status == "failed"
    message = failed.failure()
    assert "Create the volume" in message
    assert "The backend is down." in message
    assert "removed the server, volume and security group" in message
    (group_id,) = replay.created["security_groups"]
    assert replay.created["volumes"] == []
    assert [(c.method, c.service, c.path) for c in replay.changes()] == [
        ("POST", "network", "/v2.0/security-groups"),
        ("POST", "network", "/v2.0/security-group-rules"),
        ("POST", "volume", f"/v3/{replay.project_id}/volumes"),
        ("DELETE", "network", f"/v2.0/security-groups/{group_id}"),
    ]
    assert replay.leftovers() == NOTHING
