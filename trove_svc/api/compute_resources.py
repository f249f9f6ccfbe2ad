"""The admin's view of where instances live: the ssh provider's pool hosts and their use."""

from __future__ import annotations

import falcon

from trove_svc.api import views
from trove_svc.api.resources import require_admin
from trove_svc.compute import placement, pool
from trove_svc.process.settings import Settings


class MgmtHosts:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        require_admin(req)
        hosts = pool.hosts(self._settings.host_pool) if self._settings.host_pool else []
        resp.media = {"hosts": [views.pool_host(use) for use in placement.use_of(hosts)]}
