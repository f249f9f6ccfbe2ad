"""Trove's paging on every list: ``limit`` and ``marker`` in, a ``next`` link out.

Lists the store holds (instances, tasks) are paged in the query itself, before anything
is rendered (`Page`); short lists (flavors, datastores, a guest's users) are paged in
memory (`page`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import falcon

from trove_svc.domain import errors

MAX_LIMIT = 1000
# Trove's page size for instances (and the API's other store-backed lists).
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class Page:
    """What a request asks of a list: at most `limit` items after `marker`."""

    limit: int
    marker: str | None

    @classmethod
    def of(cls, req: falcon.Request, default: int = DEFAULT_LIMIT) -> Page:
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT) or default
        return cls(limit=limit, marker=req.get_param("marker"))


def body(
    req: falcon.Request,
    collection: str,
    items: list[dict[str, Any]],
    wanted: Page,
    next_marker: str | None,
) -> dict[str, Any]:
    """A page's response: its items, and a link to the next page if there is one."""
    answer: dict[str, Any] = {collection: items}
    if next_marker is not None:
        query = urlencode({"limit": wanted.limit, "marker": next_marker})
        answer["links"] = [{"rel": "next", "href": f"{req.prefix}{req.path}?{query}"}]
    return answer


def page(
    req: falcon.Request, collection: str, items: list[dict[str, Any]], key: str = "id"
) -> dict[str, Any]:
    """One page of a short list held in memory (already in its listing order)."""
    wanted = Page.of(req, default=MAX_LIMIT)
    start = 0
    if wanted.marker is not None:
        keys = [str(item[key]) for item in items]
        if wanted.marker not in keys:
            raise errors.BadRequest(f"marker {wanted.marker[:64]!r} is not in this list.")
        start = keys.index(wanted.marker) + 1
    chosen = items[start : start + wanted.limit]
    more = start + wanted.limit < len(items)
    next_marker = str(chosen[-1][key]) if more and chosen else None
    return body(req, collection, chosen, wanted, next_marker)
