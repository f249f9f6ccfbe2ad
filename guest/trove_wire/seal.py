"""Authenticated encryption of messages, and the checks every received message passes.

Each message body is sealed with AES-256-GCM (``cryptography``) under a key its two ends
share: an instance's own key between the control plane and that instance's guest, the
control plane's key between control-plane processes. What is authenticated besides the
body names the direction and the instance (``Purpose``), so a message cannot be replayed
under another instance's id, turned into a message of another kind, or answered by a reply
meant for another call. Receivers also refuse a message id seen before and a timestamp
outside a small window (`ReplayGuard`). A refused message is dropped and counted; its
contents are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_BYTES = 12
WIRE_VERSION = 2
CONTROL = "control"


class Refused(ValueError):
    """A message failed a check. `reason` is one of: malformed, key, auth, replay, clock."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.encode())
    except (ValueError, binascii.Error) as exc:
        raise ValueError("not a base64 key") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"a key has {KEY_BYTES} bytes, not {len(key)}")
    return key


@dataclass(frozen=True)
class Purpose:
    """What a message is for; authenticated with it, so it cannot be used for another."""

    kind: str  # call, reply, report, cast
    party: str  # the instance id, or CONTROL
    detail: str = ""  # a reply's correlation id

    def aad(self) -> bytes:
        return f"trove-svc/{WIRE_VERSION}|{self.kind}|{self.party}|{self.detail}".encode()


def to_guest(instance_id: str) -> Purpose:
    return Purpose("call", instance_id)


def reply_from(instance_id: str, correlation_id: str) -> Purpose:
    return Purpose("reply", instance_id, correlation_id)


def report_from(instance_id: str) -> Purpose:
    return Purpose("report", instance_id)


CAST = Purpose("cast", CONTROL)


def seal(key: bytes, purpose: Purpose, payload: bytes) -> bytes:
    """The wire body: who it claims to be from (to pick the key), nonce and ciphertext."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, payload, purpose.aad())
    frame = {
        "v": WIRE_VERSION,
        "party": purpose.party,
        "n": base64.b64encode(nonce).decode(),
        "c": base64.b64encode(sealed).decode(),
    }
    return json.dumps(frame, separators=(",", ":")).encode()


def party_of(body: bytes) -> str:
    """The instance (or CONTROL) a body claims to come from or go to; not yet verified."""
    return _frame(body)[0]


def _frame(body: bytes) -> tuple[str, bytes, bytes]:
    try:
        frame = json.loads(body)
        if frame.get("v") != WIRE_VERSION:
            raise Refused("malformed", "unknown wire version")
        return (
            str(frame["party"]),
            base64.b64decode(frame["n"], validate=True),
            base64.b64decode(frame["c"], validate=True),
        )
    except Refused:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise Refused("malformed", type(exc).__name__) from exc


def open_sealed(key: bytes, purpose: Purpose, body: bytes) -> bytes:
    """The payload, if the body was sealed with `key` for exactly this purpose."""
    party, nonce, sealed = _frame(body)
    if party != purpose.party:
        raise Refused("auth", "sealed for another party")
    try:
        return AESGCM(key).decrypt(nonce, sealed, purpose.aad())
    except (InvalidTag, ValueError) as exc:
        raise Refused("auth", "bad key or tampered") from exc


class ReplayGuard:
    """Refuses a message id seen within the window, and a timestamp outside it.

    Ids are remembered only for the window: anything older is refused by its timestamp.
    """

    def __init__(
        self, window: float = 60.0, skew: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._window = window
        self._skew = skew
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, message_id: str, sent_at: float) -> None:
        now = self._clock()
        if sent_at > now + self._skew:
            raise Refused("clock", "dated in the future")
        if sent_at < now - self._window:
            raise Refused("clock", "too old")
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - self._window:
                self._seen.popitem(last=False)
            if message_id in self._seen:
                raise Refused("replay", "message id seen before")
            self._seen[message_id] = now

    def forget(self, message_id: str) -> None:
        """Take back a message the receiver could not handle: its redelivery is no replay."""
        with self._lock:
            self._seen.pop(message_id, None)


class DropCounter:
    """Refused messages by reason, for logs and metrics."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
