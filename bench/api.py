"""The API's instance list and show at scale.

Fills a private store with N instances (one project's), serves it through the API as
`trove-svc up` does (gunicorn, its default workers), and prints p50 and p95 of the
default page of `GET /instances`, of `?limit=1000`, of `/instances/detail` and of
`GET /instances/{id}`, then `ratio list/show` (p50 of the default page over p50 of show).
Aims: the ratio at most 2; `?limit=1000` p50 under 100 ms.

    .venv/bin/python bench/api.py [--instances 1000] [--requests 200]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import support
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Instance, ServiceStatus, database_proxy

PROJECT = "bench"


def fill(state_dir: Path, count: int) -> str:
    """`count` ACTIVE, HEALTHY instances in the store; returns one of their ids."""
    database = open_store(f"sqlite:///{state_dir / 'trove-svc.db'}")
    version = DatastoreVersion.select().first()
    now = time.time()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "name": f"bench-{n}",
            "project_id": PROJECT,
            "datastore_version": version.id,
            "flavor": "1",
            "volume_size": 1,
            "status": "ACTIVE",
            "status_since": now,
            "provisioned": True,
            "host": "127.0.0.1",
            "port": 40000 + n,
            "access": {"is_public": False, "allowed_cidrs": []},
            "created_at": now + n,
            "updated_at": now + n,
        }
        for n in range(count)
    ]
    with database_proxy.atomic():
        for start in range(0, count, 500):
            chunk = rows[start : start + 500]
            Instance.insert_many(chunk).execute()
            ServiceStatus.insert_many(
                [
                    {
                        "instance": r["id"],
                        "operating_status": "HEALTHY",
                        "disk_used_bytes": 1 << 20,
                        "last_sent_at": now,
                        "last_received_at": now,
                    }
                    for r in chunk
                ]
            ).execute()
    database.close()
    return str(rows[count // 2]["id"])


def timed(port: int, token: str, path: str, requests: int) -> tuple[float, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for number in range(requests + 5):
        started = time.perf_counter()
        connection.request("GET", path, headers={"X-Auth-Token": token})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        if number >= 5:
            samples.append(time.perf_counter() - started)
    connection.close()
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    service = support.Service()
    try:
        service.start()
        token = service.token(PROJECT)
        some_id = fill(service.state_dir, args.instances)
        base = f"/v1.0/{PROJECT}/instances"
        results = {
            "GET /instances (default page)": timed(service.port, token, base, args.requests),
            "GET /instances?limit=1000": timed(
                service.port, token, f"{base}?limit=1000", max(20, args.requests // 4)
            ),
            "GET /instances/detail": timed(service.port, token, f"{base}/detail", args.requests),
            "GET /instances/{id}": timed(service.port, token, f"{base}/{some_id}", args.requests),
        }
    finally:
        service.cleanup()
    print(f"{args.instances} instances, {args.requests} requests each (limit=1000: fewer)")
    for name, (p50, p95) in results.items():
        print(f"  {name:32s}: p50 {p50 * 1000:7.2f} ms  p95 {p95 * 1000:7.2f} ms")
    ratio = results["GET /instances (default page)"][0] / results["GET /instances/{id}"][0]
    print(f"ratio list/show: {ratio:.2f}")


if __name__ == "__main__":
    main()
