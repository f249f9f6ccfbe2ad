"""The Grafana dashboard in docs/ reads only metrics trove-svc exposes."""

from __future__ import annotations

import json
import re

from trove_svc.process import metrics
from trove_svc.process.settings import PROJECT_ROOT


def test_every_dashboard_query_names_an_exposed_metric() -> None:
    dashboard = json.loads((PROJECT_ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"trove_\w+", expr)
    }
    made = metrics.get()
    exposed = {m._name for m in vars(made).values()} | {"trove_instances"}
    assert used and used <= exposed, used - exposed
