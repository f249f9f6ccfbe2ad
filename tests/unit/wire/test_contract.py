"""The guest contract is the one list of calls: every driver answers each call by a method
of the same name taking the call's arguments, and every error code has one meaning."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest

from trove_svc.bus.client import GUEST_ERRORS
from trove_svc.domain import errors
from trove_wire import contract, datastores


def _driver(path: str) -> type:
    module, name = path.split(":")
    found: type = getattr(importlib.import_module(module), name)
    return found


# Every registered datastore's driver.
DRIVERS = [_driver(spec.driver) for spec in datastores.REGISTRY.values()]


DRIVER_CALLS = [c for c in contract.CALLS.values() if not c.by_agent]
AGENT_CALLS = [c for c in contract.CALLS.values() if c.by_agent]


def _answers(answerer: type, call: type[contract.Call[object]]) -> None:
    method = getattr(answerer, call.method)
    parameters = [p for p in inspect.signature(method).parameters if p != "self"]
    assert parameters == [f.name for f in dataclasses.fields(call)]  # type: ignore[arg-type]


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("call", DRIVER_CALLS, ids=lambda c: c.method)
def test_every_driver_answers_every_call_with_its_arguments(
    driver: type, call: type[contract.Call[object]]
) -> None:
    _answers(driver, call)


@pytest.mark.parametrize("call", AGENT_CALLS, ids=lambda c: c.method)
def test_the_agent_answers_its_own_calls(call: type[contract.Call[object]]) -> None:
    from trove_guest.backup_runner import BackupRunner

    _answers(BackupRunner, call)


def test_calls_round_trip_through_their_arguments() -> None:
    sent = contract.GrantAccess("alice", "%", ["orders"])
    assert contract.decode_call(sent.method, sent.arguments()) == sent


@pytest.mark.parametrize(
    ("method", "arguments"),
    [("drop_everything", {}), ("grant_access", {"name": "x"}), ("list_users", {"extra": 1})],
)
def test_unknown_calls_and_misfit_arguments_are_refused(
    method: str, arguments: dict[str, object]
) -> None:
    with pytest.raises(contract.UnknownCall):
        contract.decode_call(method, arguments)


def test_each_error_code_has_one_class_and_one_meaning_to_the_api() -> None:
    assert set(contract.ERRORS) == set(contract.ErrorCode)
    assert GUEST_ERRORS[contract.ErrorCode.CONFLICT] is errors.Conflict
    assert GUEST_ERRORS[contract.ErrorCode.NOT_FOUND] is errors.NotFound
    assert set(GUEST_ERRORS) <= set(contract.ErrorCode)
