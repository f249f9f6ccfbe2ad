"""The service key and what it protects.

The service key (32 random bytes in a 0600 file made by the set-up, or a setting) never
leaves the control plane. From it come:

- the control plane's cast key (HKDF), which authenticates casts to the task manager: a
  guest, whose broker account cannot publish there anyway, could not forge one either;
- the sealing at rest of each instance's message key and of a task's secrets (users'
  passwords) in the store, each bound to the row it belongs to.

An instance's message key is made when the instance is, reaches its guest only in the
guest's 0600 config, and goes with the instance's row when it is deleted.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trove_svc.security import private_files
from trove_svc.store.models import Instance
from trove_wire.seal import KEY_BYTES, decode_key, encode_key, new_key

_NONCE = 12


class SealedValueError(ValueError):
    """A sealed value could not be opened: wrong service key, or tampered with."""


def create_service_key(path: Path) -> bool:
    """Write a new service key to `path` (0600) unless one is there; True if made."""
    if path.exists():
        return False
    private_files.write(path, encode_key(new_key()) + "\n")
    return True


class ServiceKeys:
    def __init__(self, service_key: bytes) -> None:
        if len(service_key) != KEY_BYTES:
            raise ValueError(f"the service key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(service_key)
        self.control = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"trove-svc casts"
        ).derive(service_key)

    @classmethod
    def load(cls, path: Path) -> ServiceKeys:
        try:
            return cls(decode_key(path.read_text().strip()))
        except OSError as exc:
            raise ValueError(f"cannot read the service key {path}: {exc.strerror}") from exc

    def seal(self, bound_to: str, plaintext: bytes) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext, b"at-rest|" + bound_to.encode())
        return "v1:" + base64.b64encode(nonce + sealed).decode()

    def open(self, bound_to: str, token: str) -> bytes:
        try:
            raw = base64.b64decode(token.removeprefix("v1:"), validate=True)
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], b"at-rest|" + bound_to.encode())
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise SealedValueError(f"cannot open the value sealed for {bound_to}") from exc

    def new_instance_key(self, instance_id: str) -> tuple[bytes, str]:
        """A fresh message key for an instance, and its sealed form for the store."""
        key = new_key()
        return key, self.seal(f"instance:{instance_id}", key)

    def instance_key(self, instance_id: str, sealed: str) -> bytes:
        return self.open(f"instance:{instance_id}", sealed)

    def seal_secrets(self, task_id: str, values: dict[str, Any]) -> str:
        return self.seal(f"task:{task_id}", json.dumps(values).encode())

    def task_secrets(self, task_id: str, sealed: str | None) -> dict[str, Any]:
        if not sealed:
            return {}
        opened: dict[str, Any] = json.loads(self.open(f"task:{task_id}", sealed))
        return opened


class KeyRing:
    """Instances' message keys by id, read from the store once and then kept in memory."""

    def __init__(self, keys: ServiceKeys, size: int = 10_000) -> None:
        self._keys = keys
        self._size = size
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def service(self) -> ServiceKeys:
        return self._keys

    def for_instance(self, instance_id: str) -> bytes | None:
        with self._lock:
            if instance_id in self._cache:
                self._cache.move_to_end(instance_id)
                return self._cache[instance_id]
        row = Instance.select(Instance.guest_key).where(Instance.id == instance_id).first()
        if row is None or not row.guest_key:
            return None
        key = self._keys.instance_key(instance_id, row.guest_key)
        with self._lock:
            self._cache[instance_id] = key
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return key

    def forget(self, instance_id: str) -> None:
        with self._lock:
            self._cache.pop(instance_id, None)
