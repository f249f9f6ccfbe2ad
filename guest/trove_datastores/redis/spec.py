"""Redis: ACL users but no databases or root; its binaries and guest driver."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from trove_datastores import throwaway
from trove_datastores.base import (
    BackupNaming,
    Capabilities,
    DatastoreSpec,
    Discovered,
    Parameter,
    PasswordRule,
    identifier_rule,
    version_of,
)

ADMIN_USER = "os_admin"
# The server's socket, in the role's base directory (the role names it so too).
SOCKET = "redis.sock"
HIDDEN_USERS = frozenset({"default", ADMIN_USER})


def discover() -> Discovered | None:
    server = shutil.which("redis-server")
    if not server:
        return None
    version = version_of(server, r"v=(\d+\.\d+)")
    # ACL users need Redis 6 or later.
    if not version or int(version.split(".")[0]) < 6:
        return None
    return Discovered(version, str(Path(server).parent))


# The snapshot and ACL file, packed and compressed, one file per backup, labelled with
# the backup's id.
BACKUP_NAMING = BackupNaming(file_suffix=".tar.zst")


def restore_vars(chain: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    return {"artifact": chain[-1]["location"]}


# What a configuration group may set: tuning, never paths, ports, users or replication.
TUNABLES = frozenset(
    {
        "maxmemory-policy",
        "maxmemory-samples",
        "timeout",
        "tcp-keepalive",
        "hz",
        "slowlog-log-slower-than",
        "slowlog-max-len",
        "latency-monitor-threshold",
        "notify-keyspace-events",
        "lazyfree-lazy-eviction",
        "lazyfree-lazy-expire",
        "appendonly",
        "appendfsync",
        "save",
        "databases",
        "maxclients",
        "busy-reply-threshold",
        "activedefrag",
        "lfu-log-factor",
        "lfu-decay-time",
        "hash-max-listpack-entries",
        "list-max-listpack-size",
        "set-max-intset-entries",
        "zset-max-listpack-entries",
    }
)

_RANGE = re.compile(r"between (-?\d+) and (-?\d+)")
_CHOICES = re.compile(r"one of the following: (.+)$")


def describe_parameters(found: Discovered) -> list[Parameter]:
    """The tunables as a throwaway server answers for them: `CONFIG GET` gives the default;
    a `CONFIG SET` of a value no parameter takes gives its rule in the engine's own error
    (a range, the choices, yes or no, or that it is immutable: a restart to change)."""
    import redis  # only the control plane describes

    with throwaway.workdir() as work:
        socket = str(work / SOCKET)
        argv = [
            str(Path(found.bin_dir) / "redis-server"),
            "--port",
            "0",
            "--unixsocket",
            socket,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(work),
        ]
        with throwaway.server(argv) as process:
            client = redis.Redis(unix_socket_path=socket, decode_responses=True)
            throwaway.until_ready(client.ping, process)
            described = [_probe(client, name) for name in sorted(TUNABLES)]
            client.close()
    return [_with_form(parameter) for parameter in described if parameter is not None]


# Free-form strings the engine parses by a grammar of its own.
_FORMS = {
    "save": (r"\s*(?:\d+\s+\d+(?:\s+\d+\s+\d+)*)?\s*", "pairs of seconds and changes, or empty"),
    "notify-keyspace-events": (
        r"(?-i:[KEglshzxetmdnA]*)",  # case matters here
        "letters of K E g l s h z x e t m d n A (see Redis' notify-keyspace-events)",
    ),
}


def _with_form(parameter: Parameter) -> Parameter:
    if parameter.name not in _FORMS or parameter.type != "string":
        return parameter
    pattern, hint = _FORMS[parameter.name]
    return replace(parameter, pattern=pattern, hint=hint)


def _probe(client: Any, name: str) -> Parameter | None:
    import redis

    current = client.config_get(name).get(name)
    if current is None:
        return None  # not in this version
    # A number below any range, then a word no parameter takes: each refusal names a rule.
    for probe in ("-99999999999999", "\x01not-a-value"):
        try:
            client.config_set(name, probe)
        except redis.ResponseError as refusal:
            found = _from_refusal(name, current, str(refusal))
            if found is not None:
                return found
        else:
            client.config_set(name, current)
    return Parameter(name, "string", False, default=current)  # free-form


def _from_refusal(name: str, default: str, refusal: str) -> Parameter | None:
    if "immutable" in refusal:
        kind = "boolean" if default in ("yes", "no") else "string"
        kind = "integer" if default.isdigit() else kind
        return Parameter(name, kind, True, default=default)
    if "'yes' or 'no'" in refusal:
        return Parameter(name, "boolean", False, default=default)
    if found := _RANGE.search(refusal):
        return Parameter(name, "integer", False, int(found[1]), int(found[2]), default=default)
    if found := _CHOICES.search(refusal):
        choices = tuple(choice.strip() for choice in found[1].split(","))
        return Parameter(name, "enum", False, choices=choices, default=default)
    return None


def binary_vars(found: Discovered) -> dict[str, Any]:
    return {"server_bin": str(Path(found.bin_dir) / "redis-server")}


SPEC = DatastoreSpec(
    name="redis",
    default_port=6379,
    capabilities=Capabilities(databases=False, users=True, root=False, backups=True, replicas=True),
    user_rule=identifier_rule(
        "A-Za-z_",
        "A-Za-z0-9_-",
        64,
        ("a letter or underscore", "letters, digits, underscores and hyphens"),
        reserved=HIDDEN_USERS,
    ),
    database_rule=None,
    system_databases=frozenset(),
    hidden_users=HIDDEN_USERS,
    tunables=TUNABLES,
    describe_parameters=describe_parameters,
    boolean_words=("yes", "no"),
    log_file="redis.log",
    socket_name=SOCKET,
    config_file="redis.conf",
    driver="trove_datastores.redis.driver:RedisDriver",
    backup_engine="trove_datastores.redis.backup:RedisSnapshot",
    discover=discover,
    os_packages=("redis-server",),
    python_driver="redis",
    binary_vars=binary_vars,
    restore_vars=restore_vars,
    backup_naming=BACKUP_NAMING,
    # ACL rules are words: a space or a '>' would read as the start of another rule.
    password_rule=PasswordRule(forbidden=" >"),
)
