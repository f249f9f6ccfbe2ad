"""Ansible inventory plugin: the instances trove-svc manages, read from its store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.utils.display import Display
from ansible.utils.unsafe_proxy import wrap_var

DOCUMENTATION = r"""
name: trove_svc
short_description: The database instances trove-svc manages
description:
  - Lists every instance in trove-svc's store as a host named after its id, grouped by
    datastore (C(datastore_postgresql)), project (C(project_<id>)) and status
    (C(status_active)) and compute provider (C(provider_ssh)), with the variables the
    instance's roles take (ports, directories, the OS account, memory sizing) and how to
    reach it (this machine, the pool host as the pool's inventory says, or the server it
    lives on; C(trove_server) and C(trove_host) name them).
  - The source file's name must end in C(trove_svc.yml) or C(trove_svc.yaml).
  - Needs trove-svc importable by the Python that runs Ansible.
options:
  plugin:
    description: Marks the file as this plugin's source.
    required: true
    choices: ["trove_svc"]
  state_dir:
    description: trove-svc's state directory (store, instances).
    type: path
    env:
      - name: TROVE_SVC_STATE_DIR
  database_url:
    description: The store's database URL; empty means the SQLite file in I(state_dir).
    type: str
    default: ""
    env:
      - name: TROVE_SVC_DATABASE_URL
"""

EXAMPLES = r"""
# trove_svc.yml
plugin: trove_svc
state_dir: /var/lib/trove-svc

# ansible-inventory -i trove_svc.yml --graph
# ansible-playbook -i trove_svc.yml --limit datastore_postgresql my-checks.yml
"""

_GROUP_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _group(prefix: str, value: str) -> str:
    return f"{prefix}_{_GROUP_UNSAFE.sub('_', value.lower())}"


class InventoryModule(BaseInventoryPlugin):  # type: ignore[misc]
    NAME = "trove_svc"

    def verify_file(self, path: str) -> bool:
        return bool(super().verify_file(path)) and path.endswith(
            ("trove_svc.yml", "trove_svc.yaml")
        )

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            from trove_svc import compute
            from trove_svc.domain import errors
            from trove_svc.process.settings import Settings
            from trove_svc.store.db import open_store
            from trove_svc.store.models import Instance
            from trove_svc.taskmanager.provisioning import instance_vars
        except ImportError as exc:
            raise AnsibleParserError(f"trove_svc: trove-svc is not importable: {exc}") from exc

        overrides: dict[str, Any] = {}
        if self.get_option("database_url"):
            overrides["database_url"] = self.get_option("database_url")
        if self.get_option("state_dir"):
            overrides["state_dir"] = Path(self.get_option("state_dir"))
        # An entry point of its own: the rest (the host pool, say) from TROVE_SVC_* as the
        # service reads it.
        settings = Settings.from_env().with_overrides(**overrides)
        database = open_store(settings.effective_database_url)
        try:
            for instance in Instance.select().order_by(Instance.created_at):
                try:
                    connection = compute.place_of(settings, instance).connection
                    role_vars = instance_vars(settings, instance)
                except errors.TroveSvcError as exc:  # its pool host is gone, say
                    Display().warning(f"trove_svc: instance {instance.id} left out: {exc}")
                    continue
                self._add(instance, connection, role_vars)
        finally:
            database.close()

    def _add(self, instance: Any, connection: dict[str, Any], role_vars: dict[str, Any]) -> None:
        host = str(instance.id)
        self.inventory.add_host(host)
        for group in (
            _group("datastore", role_vars["trove_datastore"]),
            _group("project", str(instance.project_id)),
            _group("status", str(instance.status)),
            _group("provider", str(instance.provider)),
        ):
            self.inventory.add_group(group)
            self.inventory.add_child(group, host)
        # What the store holds is data (a tenant's names and settings among it): marked
        # unsafe, so no template evaluates it. Only how to reach the host is ours.
        recorded = {
            "trove_name": instance.name,
            "trove_project": instance.project_id,
            "trove_status": instance.status,
            "trove_host": instance.host,
            "trove_provider": instance.provider,
            "trove_server": instance.server,
            "trove_port": instance.port,
            **role_vars,
        }
        facts = {**wrap_var(recorded), **connection}
        for key, value in facts.items():
            self.inventory.set_variable(host, key, value)
