"""gunicorn's own entry point loads settings as `trove-svc` does: a bad one is named, not
a traceback."""

from __future__ import annotations

import os

import pytest

from trove_svc.api import wsgi


def test_a_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_SVC_")}
    monkeypatch.setattr(os, "environ", {**env, "TROVE_SVC_API_WORKERS": "abc"})
    with pytest.raises(SystemExit) as exited:
        wsgi.application()
    assert "TROVE_SVC_API_WORKERS='abc': a whole number" in str(exited.value)
