"""Fixtures for the public surfaces: published incidents and a client that goes through the fast path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.approving import confirm


@pytest.fixture
def fast_client(app) -> Iterator[Any]:
    """A TestClient for `PublicFastPath(app)`: the same stack uvicorn serves (broadcaster.asgi:app)."""
    from fastapi.testclient import TestClient

    from broadcaster.public.fastpath import PublicFastPath

    with TestClient(PublicFastPath(app)) as c:
        yield c


@pytest.fixture
def publish(client, auth, emergency_category) -> Callable[..., dict[str, Any]]:
    """`publish(title=..., body=..., **update_fields)` -> the published update (creates the incident unless
    `incident_id` is given)."""
    headers = auth("write", "publish")
    approver = auth("publish")

    def go(
        title: str = "Power outage",
        body: str = "We are investigating a power outage in the north district.",
        *,
        incident_id: int | None = None,
        severity: str = "major",
        sites: list[str] | None = None,
        public: bool = True,
        category: str = "emergency",
        **update: Any,
    ) -> dict[str, Any]:
        if incident_id is None:
            resp = client.post(
                "/v1/incidents",
                headers=headers,
                json={
                    "title": title,
                    "category": category,
                    "severity": severity,
                    "sites": sites or [],
                    "public": public,
                },
            )
            assert resp.status_code == 201, resp.text
            incident_id = resp.json()["id"]
        resp = client.post(f"/v1/incidents/{incident_id}/updates", headers=headers, json={"body": body, **update})
        assert resp.status_code == 201, resp.text
        update_id = resp.json()["id"]
        resp = client.post(f"/v1/updates/{update_id}/publish", headers=headers)
        if resp.status_code == 202:  # critical: a second person approves exactly this content
            approve = {**approver, "If-Match": resp.headers["ETag"]}
            resp = client.post(f"/v1/updates/{update_id}/approve", json=confirm(update_id), headers=approve)
        assert resp.status_code == 200, resp.text
        out = resp.json()["update"]
        assert out["state"] == "published"
        return out

    return go
