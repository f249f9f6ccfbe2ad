"""Trove's paging on every list: ``limit`` and ``marker`` in, a ``next`` link out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import falcon

from trove_svc import errors

MAX_LIMIT = 1000


def page(
    req: falcon.Request, collection: str, items: list[dict[str, Any]], key: str = "id"
) -> dict[str, Any]:
    """The response body for one page of `items` (already in their listing order)."""
    limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT) or MAX_LIMIT
    marker = req.get_param("marker")
    start = 0
    if marker is not None:
        keys = [str(item[key]) for item in items]
        if marker not in keys:
            raise errors.BadRequest(f"marker {marker!r} is not in this list.")
        start = keys.index(marker) + 1
    chosen = items[start : start + limit]
    body: dict[str, Any] = {collection: chosen}
    if start + limit < len(items):
        query = urlencode({"limit": limit, "marker": chosen[-1][key]})
        body["links"] = [{"rel": "next", "href": f"{req.prefix}{req.path}?{query}"}]
    return body
