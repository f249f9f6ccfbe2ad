"""JSON schemas for request bodies, checked before a responder runs."""

from __future__ import annotations

from typing import Any

from trove_svc.domain.strategies import BACKENDS

_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
# An S3 bucket name (a backup strategy's, or Trove's Swift container): 3 to 63 lower-case
# letters, digits, dots and dashes.
_BUCKET = {"type": ["string", "null"], "pattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"}
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_OPTIONAL_ID = {"type": ["string", "null"], "maxLength": 64}
_REF = {
    "oneOf": [
        {"type": "string", "minLength": 1, "maxLength": 64},
        {"type": "integer", "minimum": 0},
    ]
}

DATABASE = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        # Checked against the engine's own lists (parameter_rules.check_database_options).
        "character_set": {"type": "string", "minLength": 1, "maxLength": 64},
        "collate": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    "additionalProperties": False,
}

USER = {
    "type": "object",
    "required": ["name", "password"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "password": {"type": "string", "minLength": 1, "maxLength": 128},
        "host": {"type": "string", "maxLength": 255},
        "databases": {
            "type": "array",
            "maxItems": 64,
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}},
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

ACCESS = {
    "type": "object",
    "properties": {
        "is_public": {"type": "boolean"},
        "allowed_cidrs": {
            "type": "array",
            "maxItems": 32,
            "items": {"type": "string", "minLength": 1, "maxLength": 64},
        },
    },
    "additionalProperties": False,
}

# A network for the instance, as Trove's clients name one (net-id, v4-fixed-ip, port-id,
# or network_id, subnet_id, ip_address).
_NIC = {
    "type": "object",
    "maxProperties": 8,
    "propertyNames": {"pattern": "^[a-z0-9_-]{1,32}$"},
    "additionalProperties": {"type": "string", "maxLength": 255},
}

INSTANCE_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["instance"],
    "properties": {
        "instance": {
            "type": "object",
            "required": ["name"],
            # A replica takes its source's flavor and volume size unless it names its own.
            "if": {"not": {"required": ["replica_of"]}},
            "then": {"required": ["flavorRef", "volume"]},
            "properties": {
                "name": _NAME,
                "flavorRef": _REF,
                "volume": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 1024},
                        "type": _OPTIONAL_ID,
                    },
                    "additionalProperties": False,
                },
                "datastore": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "minLength": 1, "maxLength": 64},
                        "version": {"type": "string", "minLength": 1, "maxLength": 64},
                    },
                    "additionalProperties": False,
                },
                "databases": {"type": "array", "maxItems": 64, "items": DATABASE},
                "users": {"type": "array", "maxItems": 64, "items": USER},
                "access": ACCESS,
                "configuration": {"type": ["string", "null"], "maxLength": 64},
                "replica_of": {"type": "string", "minLength": 1, "maxLength": 64},
                "replica_count": {"type": "integer", "minimum": 1, "maximum": 5},
                "restorePoint": {
                    "type": "object",
                    "required": ["backupRef"],
                    "properties": {
                        "backupRef": {"type": "string", "minLength": 1, "maxLength": 255},
                        "restore_time": {"type": "string", "minLength": 10, "maxLength": 40},
                    },
                    "additionalProperties": False,
                },
                # Accepted for client compatibility; the local provider has no use for them.
                "availability_zone": {"type": ["string", "null"], "maxLength": 255},
                "region_name": {"type": ["string", "null"], "maxLength": 255},
                "nics": {"type": "array", "maxItems": 16, "items": _NIC},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

DATABASES_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["databases"],
    "properties": {
        "databases": {"type": "array", "minItems": 1, "maxItems": 64, "items": DATABASE}
    },
    "additionalProperties": False,
}

USERS_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["users"],
    "properties": {"users": {"type": "array", "minItems": 1, "maxItems": 64, "items": USER}},
    "additionalProperties": False,
}

_NAME_PASSWORD = {
    "type": "object",
    "required": ["name", "password"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "password": {"type": "string", "minLength": 1, "maxLength": 128},
        "host": {"type": "string", "maxLength": 255},
    },
    "additionalProperties": False,
}

USERS_CHANGE_PASSWORDS: dict[str, Any] = {
    "type": "object",
    "required": ["users"],
    "properties": {
        "users": {"type": "array", "minItems": 1, "maxItems": 64, "items": _NAME_PASSWORD}
    },
    "additionalProperties": False,
}

USER_UPDATE: dict[str, Any] = {
    "type": "object",
    "required": ["user"],
    "properties": {
        "user": {
            "type": "object",
            "minProperties": 1,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 64},
                "password": {"type": "string", "minLength": 1, "maxLength": 128},
                "host": {"type": "string", "maxLength": 255},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

USER_GRANT: dict[str, Any] = {
    "type": "object",
    "required": ["databases"],
    "properties": {
        "databases": {
            "type": "array",
            "minItems": 1,
            "maxItems": 64,
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}},
                "additionalProperties": False,
            },
        }
    },
    "additionalProperties": False,
}

ROOT_ENABLE: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {"password": {"type": "string", "minLength": 1, "maxLength": 128}},
    "additionalProperties": False,
}

INSTANCE_UPDATE: dict[str, Any] = {
    "type": "object",
    "required": ["instance"],
    "properties": {
        "instance": {
            "type": "object",
            "properties": {
                "name": _NAME,
                "configuration": _OPTIONAL_ID,
                "access": ACCESS,
                "replica_of": _OPTIONAL_ID,
                "slave_of": _OPTIONAL_ID,
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

_EMPTY = {"type": ["object", "null"], "additionalProperties": False}

INSTANCE_ACTION: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "restart": _EMPTY,
        "reset_status": _EMPTY,
        "resize": {
            "type": "object",
            "oneOf": [
                {"required": ["flavorRef"]},
                {"required": ["volume"]},
            ],
            "properties": {
                "flavorRef": _REF,
                "volume": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 1024}},
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
        "promote_to_replica_source": _EMPTY,
        "eject_replica_source": _EMPTY,
        "rejoin_replica_source": _EMPTY,
        "stop": _EMPTY,
        "reset_password": _EMPTY,
    },
    "additionalProperties": False,
}


BACKUP_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["backup"],
    "properties": {
        "backup": {
            "type": "object",
            "required": ["name", "instance"],
            "properties": {
                "name": _NAME,
                "instance": {"type": "string", "minLength": 1, "maxLength": 64},
                "description": {"type": ["string", "null"], "maxLength": 1024},
                "parent_id": _OPTIONAL_ID,
                "incremental": {"type": ["integer", "boolean", "null"]},
                # Beyond Trove: changes since the newest full backup (pgBackRest's diff).
                "differential": {"type": ["boolean", "null"]},
                # Accepted for client compatibility: where backups go is the strategy's.
                "swift_container": _BUCKET,
                # Trove's choice of store: one this deployment serves, checked against the
                # instance's strategy (strategies.require_driver).
                "storage_driver": {"enum": [*BACKENDS, None]},
                # Trove's copy of a backup from elsewhere, as its clients send it.
                "restore_from": {
                    "type": ["object", "null"],
                    "properties": {
                        "remote_location": {"type": "string", "maxLength": 1024},
                        "local_datastore_version_id": _ID,
                        "size": {"type": "number", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

BACKUP_STRATEGY_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["backup_strategy"],
    "properties": {
        "backup_strategy": {
            "type": "object",
            "properties": {
                "instance_id": _OPTIONAL_ID,
                "swift_container": _BUCKET,
                "backend": {"enum": list(BACKENDS)},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

SCHEDULE_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["schedule"],
    "properties": {
        "schedule": {
            "type": "object",
            "required": ["name", "cron"],
            "properties": {
                "name": _NAME,
                # Fields of numbers, names (jan, mon) and * / , - ? L W #, or a word
                # such as @midnight; croniter checks the rest.
                "cron": {
                    "type": "string",
                    "minLength": 9,
                    "maxLength": 128,
                    "pattern": "^[A-Za-z0-9*/,?#@ -]+$",
                },
                "incremental": {"type": "boolean"},
                "retention_count": {"type": "integer", "minimum": 1, "maximum": 1000},
                "retention_days": {"type": "number", "exclusiveMinimum": 0, "maximum": 3650},
                "verify": {"type": "boolean"},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}


# Configuration groups: values are checked against the engine's rules by the service;
# here, only their size, and that a parameter's name is a word (it is quoted in answers).
_VALUES = {
    "type": "object",
    "maxProperties": 128,
    "propertyNames": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
    "additionalProperties": {"type": ["string", "integer", "number", "boolean"], "maxLength": 1024},
}

CONFIGURATION_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["configuration"],
    "properties": {
        "configuration": {
            "type": "object",
            "required": ["name", "values"],
            "properties": {
                "name": _NAME,
                "description": {"type": ["string", "null"], "maxLength": 1024},
                "values": _VALUES,
                "datastore": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "minLength": 1, "maxLength": 64},
                        "version": {"type": "string", "minLength": 1, "maxLength": 64},
                        "version_number": {"type": "string", "minLength": 1, "maxLength": 64},
                    },
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

CONFIGURATION_UPDATE: dict[str, Any] = {
    "type": "object",
    "required": ["configuration"],
    "properties": {
        "configuration": {
            "type": "object",
            "required": ["values"],
            "properties": {
                "name": _NAME,
                "description": {"type": ["string", "null"], "maxLength": 1024},
                "values": _VALUES,
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}
