"""People who act through the API, a live incident set up by two others, and the public surfaces, for the tests of
one person against the gate (test_change_requests.py, test_one_person.py). The fixtures are registered in
tests/core/conftest.py.

A person has one or more identities: a key, a console session (a browser signed in through the login form), or
both (a console session and a key they own: `create_key(..., owner_user_id)`, as `keys create --owner`). All the
identities of one person count as that person (`Principal.actor` is `user:<id>` for both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.approving import confirm
from tests.users.conftest import PASSWORD, session_csrf, sign_in

#: every public surface (the banner in each form, status pages, feeds, CAP, the Statuspage-compatible API)
SURFACES = (
    "/v1/banner",
    "/v1/banner?site=www",
    "/v1/banner.html",
    "/v1/banner.js",
    "/status",
    "/status/incidents/{iid}",
    "/status/history",
    "/v1/feeds/atom.xml",
    "/v1/feeds/rss.xml",
    "/v1/feeds/cap.xml",
    "/v1/feeds/cap/{uid}.xml",
    "/v1/public/summary.json",
    "/v1/public/components.json",
    "/api/v2/summary.json",
    "/api/v2/incidents.json",
    "/api/v2/scheduled-maintenances.json",
)


@dataclass
class Person:
    """Someone acting through the API: a TestClient (a browser for a console session) and its headers."""

    client: Any
    headers: dict[str, str]
    actor: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: which identity this is, for failure messages: "key 'k3-...' (read, write)", "console session of user:4"
    label: str = ""

    def identities(self) -> list[Person]:
        """Every identity of this person: this one, and their own key when they have one."""
        return [self, self.extra["key"]] if "key" in self.extra else [self]

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """Any call as this identity (`headers` are added to the identity's own)."""
        return self.client.request(method, path, headers={**self.headers, **(headers or {})}, **kwargs)

    def patch(self, iid: int, body: dict[str, Any]) -> Any:
        return self.client.patch(f"/v1/incidents/{iid}", headers=self.headers, json=body)

    def approve(self, iid: int, cid: int, etag: str | None) -> Any:
        headers = self.headers if etag is None else {**self.headers, "If-Match": etag}
        return self.client.post(f"/v1/incidents/{iid}/change-requests/{cid}/approve", headers=headers)

    def reject(self, iid: int, cid: int, comment: Any = "Not what the crews report.") -> Any:
        return self.client.post(
            f"/v1/incidents/{iid}/change-requests/{cid}/reject", headers=self.headers, json={"comment": comment}
        )


@pytest.fixture
def people(app, client, make_key, technical_category) -> Any:
    """`people("editor-key")` -> a Person; console people are signed in through the login form.

    Kinds: `<scope>-key` for a key of that role (editor: read+write; approver: read+write+publish; publish-only:
    read+publish; alerts, read, metrics, admin: that scope alone), `console-<role>[+<role>...]` for a person
    signed in to the console, `both` (an editor and approver with a console session and their own
    read+write+publish key) and `both-admin` (an admin with a console session and their own admin key)."""
    from fastapi.testclient import TestClient

    from broadcaster.db import session_scope
    from broadcaster.security import create_key
    from broadcaster.users import service

    browsers: list[Any] = []
    count = {"n": 0}

    def user(*roles: str) -> int:
        count["n"] += 1
        with session_scope() as session:
            email = f"{'-'.join(roles)}{count['n']}@example.org"
            return service.create_user(session, email, f"Person {count['n']}", list(roles), PASSWORD).id

    def console(uid: int) -> Person:
        from broadcaster.models import User

        with session_scope() as session:
            email = session.get(User, uid).email  # type: ignore[union-attr]
        browser = TestClient(app)
        browser.__enter__()
        browsers.append(browser)
        assert sign_in(browser, email).status_code == 303
        actor = f"user:{uid}"
        person = Person(browser, {"X-CSRF-Token": session_csrf(browser)}, actor, label=f"console session of {actor}")
        person.extra["email"] = email
        return person

    def key(*scopes: str, owner: int | None = None) -> Person:
        with session_scope() as session:
            row, plaintext = create_key(
                session, f"k{len(browsers)}-{count['n']}-{'-'.join(scopes)}", list(scopes), owner
            )
            name = row.name
        actor = f"user:{owner}" if owner else f"key:{name}"
        label = f"{actor}'s own key {name!r}" if owner else f"key {name!r} ({', '.join(scopes)})"
        return Person(client, {"Authorization": f"Bearer {plaintext}"}, actor, label=label)

    def make(kind: str) -> Person:
        count["n"] += 1
        if kind == "editor-key":
            return key("read", "write")
        if kind == "approver-key":  # an approver's key that may also edit (write and publish)
            return key("read", "write", "publish")
        if kind == "publish-only-key":
            return key("read", "publish")
        if kind in ("alerts-key", "read-key", "metrics-key", "admin-key"):
            return key(kind.removesuffix("-key"))
        if kind.startswith("console-"):
            return console(user(*kind.removeprefix("console-").split("+")))
        if kind == "both":  # a person with a console session and their own key
            uid = user("editor", "approver")
            person = console(uid)
            person.extra["key"] = key("read", "write", "publish", owner=uid)
            return person
        if kind == "both-admin":  # an admin with a console session and their own admin key
            uid = user("admin")
            person = console(uid)
            person.extra["key"] = key("admin", owner=uid)
            return person
        raise AssertionError(kind)

    yield make
    for b in browsers:
        b.__exit__(None, None, None)


@pytest.fixture
def setup_keys(make_key) -> tuple[dict[str, str], dict[str, str]]:
    """The admin who prepares the scene and the second key that approves its first critical update."""
    return (
        {"Authorization": f"Bearer {make_key('admin', name='setup-admin')}"},
        {"Authorization": f"Bearer {make_key('read', 'publish', name='setup-approver')}"},
    )


@pytest.fixture
def live(client, setup_keys, emergency_category) -> Any:
    """`live(severity="critical")` -> (incident id, published update id): public, unresolved, with a published
    update (approved by a second key when it needs approval), on every banner site."""
    admin, approver = setup_keys

    def make(severity: str = "critical", **fields: Any) -> tuple[int, int]:
        body: dict[str, Any] = {"title": "Water main break", "category": "emergency", "severity": severity}
        body |= {"affected_services": ["water"], "update": {"body": "Crews are on site.", "summary": "Crews on site"}}
        resp = client.post("/v1/incidents", headers=admin, json=body | fields)
        assert resp.status_code == 201, resp.text
        iid, uid = resp.json()["id"], resp.json()["updates"][0]["id"]
        published = client.post(f"/v1/updates/{uid}/publish", headers=admin)
        if published.status_code == 202:
            approved = client.post(
                f"/v1/updates/{uid}/approve",
                json=confirm(uid),
                headers={**approver, "If-Match": published.headers["ETag"]},
            )
            assert approved.status_code == 200, approved.text
        else:
            assert published.status_code == 200, published.text
        return iid, uid

    return make


def surfaces(client, iid: int, uid: int, extra: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every public surface as the public gets it, rendered from the database (this process's cache dropped);
    `extra` paths too."""
    from broadcaster.public.cache import get_cache

    get_cache().invalidate()
    out = {}
    for path in SURFACES + extra:
        url = path.format(iid=iid, uid=uid)
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        out[url] = resp.content
    return out


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    return [url for url in before if before[url] != after[url]]
