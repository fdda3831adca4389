"""The admin pages (bot/pages/admin.py), in process: every page and its JSON twin, the
re-queue form. Who may see them: test_auth.py."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot import inbox, pages
from bot.approvals.models import audit_log
from bot.governor import PolicyHolder
from bot.pages import SESSION_COOKIE

from .conftest import (
    BEARER,
    HEAD,
    Seeded,
    csrf_of,
    dead_delivery,
    sign_in,
    state_of,
)

# -- authentication ------------------------------------------------------------------------


# -- the dead-letter queue ---------------------------------------------------------------------


def test_requeue_from_the_page_needs_the_csrf_token(client: TestClient, engine: Engine) -> None:
    key = dead_delivery(engine, "dead-1", "RuntimeError: the forge answered 502\nTraceback ...")
    sign_in(client)
    page = client.get("/admin/dead")
    assert key in page.text and "RuntimeError: the forge answered 502" in page.text
    for bad in ({}, {"csrf": ""}, {"csrf": "f" * 64}):
        r = client.post("/admin/dead/requeue", data={"delivery": key, **bad})
        assert r.status_code == 403
        assert state_of(engine, key) == inbox.DEAD
    r = client.post(
        "/admin/dead/requeue",
        data={"delivery": key, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/admin/dead?requeued={quote(key)}"
    row = inbox.get(engine, key)
    assert row is not None and row["state"] == inbox.QUEUED and row["attempts"] == 0
    after = client.get(r.headers["location"])
    assert "Re-queued" in after.text and "No dead deliveries." in after.text
    # the same button again: nothing dead by that name any more
    again = client.post("/admin/dead/requeue", data={"delivery": key, "csrf": csrf_of(page.text)})
    assert again.status_code == 404


def test_requeue_with_the_bearer_token(client: TestClient, engine: Engine) -> None:
    key = dead_delivery(engine, "dead-2")
    listed = client.get("/admin/dead", params={"format": "json"}, headers=BEARER).json()
    assert [d["key"] for d in listed["dead"]] == [key]
    assert listed["dead"][0]["attempts"] == 1 and listed["dead"][0]["error"] == "RuntimeError: boom"
    r = client.post("/admin/dead/requeue", json={"delivery": "dead-2"}, headers=BEARER)
    assert r.status_code == 200 and r.json() == {"delivery": "dead-2", "requeued": 1}
    assert client.post("/admin/dead/requeue", json={"delivery": key}, headers=BEARER).json() == {
        "delivery": key,
        "requeued": 0,
    }
    assert client.get("/admin/dead?format=json", headers=BEARER).json()["dead"] == []


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Cookie": f"{SESSION_COOKIE}=x.y.z"}]
)
def test_requeue_refuses_a_wrong_or_missing_token(
    client: TestClient, engine: Engine, headers: dict[str, str]
) -> None:
    key = dead_delivery(engine, "dead-3")
    r = client.post(
        "/admin/dead/requeue",
        json={"delivery": key},
        headers={**headers, "Accept": "application/json"},
    )
    assert r.status_code == 401
    assert state_of(engine, key) == inbox.DEAD


# -- the other pages ---------------------------------------------------------------------------


def test_open_requests(client: TestClient, seeded: Seeded) -> None:
    body = client.get("/admin/requests?format=json", headers=BEARER).json()
    (request,) = body["requests"]  # the request of the older commit was approved
    assert request["id"] == seeded.request_id and request["sha"] == HEAD
    assert request["group"] == "senior" and request["approved"] == 0 and request["required"] == 1
    assert request["author"] == "dave (github)" and request["rules"] == ["prod-only"]
    assert request["verdict_url"] == f"/v/{seeded.token}"
    sign_in(client)
    html = client.get("/admin/requests").text
    assert "Bump the shop to the newest nginx" in html and f'href="/v/{seeded.token}"' in html


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ({}, 2),
        ({"repo": "acme/shop"}, 2),
        ({"repo": "ACME/"}, 2),
        ({"repo": "acme/other"}, 0),
        ({"decision": "fail"}, 2),
        ({"decision": "pass"}, 0),
        ({"rule": "prod-only"}, 2),
        ({"rule": "pinned-images", "decision": "fail"}, 2),
        ({"rule": "no-such-rule"}, 0),
        ({"limit": "1"}, 1),
        ({"limit": "lots"}, 2),
        ({"repo": "%"}, 0),  # a LIKE wildcard is a literal here
    ],
)
def test_recent_verdicts_filters(
    client: TestClient, seeded: Seeded, query: dict[str, str], count: int
) -> None:
    body = client.get("/admin/verdicts", params={**query, "format": "json"}, headers=BEARER).json()
    assert len(body["verdicts"]) == count
    assert body["choices"]["rules"] == ["pinned-images", "prod-only"]
    if count:
        assert body["verdicts"][0]["url"] == f"/v/{seeded.token}"  # newest first


def test_verdicts_page_keeps_the_filters(client: TestClient, seeded: Seeded) -> None:
    sign_in(client)
    html = client.get("/admin/verdicts", params={"rule": "prod-only", "repo": "acme"}).text
    assert "<option selected>prod-only</option>" in html
    assert 'name="repo" value="acme"' in html
    assert f'href="/v/{seeded.token}"' in html


def test_audit_log_and_its_chain(client: TestClient, seeded: Seeded, engine: Engine) -> None:
    body = client.get("/admin/audit?format=json", headers=BEARER).json()
    assert body["chain"]["intact"] is True and body["chain"]["rows"] == 5
    assert [e["seq"] for e in body["entries"]] == [5, 4, 3, 2, 1]
    assert body["entries"][2]["text"] == "U0ALICE (slack) approved 0a1b2c3: looks fine"
    sign_in(client)
    assert "Chain intact: 5 rows" in client.get("/admin/audit").text
    with engine.begin() as conn:  # someone edits history
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 3).values(decision="rejected"))
    broken = client.get("/admin/audit?format=json", headers=BEARER).json()["chain"]
    assert broken["intact"] is False
    assert "row 3: content does not match its hash (edited)" in broken["problems"]
    html = client.get("/admin/audit").text
    assert "Chain broken" in html and "row 3: content does not match its hash" in html
    assert "BROKEN" in client.get("/admin").text


def test_audit_log_filtered_by_subject(client: TestClient, seeded: Seeded) -> None:
    body = client.get(
        "/admin/audit", params={"format": "json", "subject": "github:acme/other#1"}, headers=BEARER
    ).json()
    assert body["entries"] == [] and body["chain"]["rows"] == 5


def test_policy_page_shows_rules_groups_and_source(
    client: TestClient, holder: PolicyHolder
) -> None:
    body = client.get("/admin/policy?format=json", headers=BEARER).json()
    assert body["source"] == str(holder.path) and body["loaded"] is True
    assert body["file_modified_at"].endswith("Z")
    assert [r["id"] for r in body["rules"]] == ["pinned-images", "prod-only"]
    pinned = body["rules"][0]
    assert pinned["action"] == "block" and "latest" in pinned["options"]["mutable_tags"]
    assert body["rules"][1]["approvers"] == "senior"
    assert {g["name"]: g["members"] for g in body["groups"]}["senior"] == {
        "github": ["alice", "carol"],
        "slack": ["U0ALICE"],
    }
    assert body["deploys"][0]["environment"] == "production"
    sign_in(client)
    html = client.get("/admin/policy").text
    assert str(holder.path) in html and "prod-only" in html and 'id="group-senior"' in html


def test_policy_page_shows_a_failed_reload(client: TestClient, holder: PolicyHolder) -> None:
    holder.path.write_text("version: 1\nrules:\n  - id: x\n    kind: no-such-kind\n")
    assert holder.reload_if_changed() is False and holder.error
    body = client.get("/admin/policy?format=json", headers=BEARER).json()
    assert body["reload_error"] == holder.error
    assert [r["id"] for r in body["rules"]] == ["pinned-images", "prod-only"]  # last good one


def test_overview(client: TestClient, seeded: Seeded, engine: Engine) -> None:
    dead_delivery(engine, "dead-4")
    body = client.get("/admin?format=json", headers=BEARER).json()
    assert body["queue"]["dead"] == 1 and body["open_requests"] == 1
    assert body["evaluations"] == 2 and body["audit"] == {"rows": 5, "intact": True, "problems": []}


class LoadedPolicy:
    """A policy source that knows when it loaded, as PolicyHolder will (`loaded_at`)."""

    def __init__(self, holder: PolicyHolder) -> None:
        self.path, self.policy = holder.path, holder.policy
        self.error: str | None = None
        self.loaded_at = dt.datetime(2024, 6, 3, 8, 59, 30)


def test_policy_load_time_and_admin_token_come_from_the_app_objects(
    engine: Engine, holder: PolicyHolder
) -> None:
    settings = SimpleNamespace(admin_token=SecretStr("from-settings-token"))
    app = Starlette(routes=pages.routes(engine, settings, LoadedPolicy(holder)))
    with TestClient(app) as c:
        auth = {"Authorization": "Bearer from-settings-token"}
        body = c.get("/admin/policy?format=json", headers=auth).json()
        assert body["loaded_at"] == "2024-06-03T08:59:30Z"
        assert c.get("/admin/policy?format=json", headers=BEARER).status_code == 401
        html = c.get("/admin/policy", headers=auth).text
        assert "Loaded</dt><dd>2024-06-03 08:59 UTC" in html
