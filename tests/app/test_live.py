"""The app served for real by uvicorn on 127.0.0.1, fed GitHub's own example payloads."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import sqlalchemy as sa
from live import LiveServer
from serverkit.testforge import UNPINNED, MemoryForge, gh_headers, payload

from bot import inbox, store
from bot.app import AppOptions, create_app
from bot.settings import Settings

from payloads.octokit import examples


def test_every_octokit_example_is_stored_and_none_gets_a_5xx(
    make_settings: Callable[..., Settings], forge: MemoryForge
) -> None:
    cases = examples()
    assert len(cases) > 300 and {"pull_request", "push", "check_run", "ping"} <= {
        c.event for c in cases
    }
    app = create_app(make_settings(), AppOptions(forges={"github": forge}, workers=2))
    statuses: Counter[int] = Counter()
    ids = {}
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        for case in cases:
            delivery = str(uuid.uuid4())
            ids[delivery] = case.name
            body = case.body
            r = http.post(
                "/webhooks/github", content=body, headers=gh_headers(body, case.event, delivery)
            )
            assert r.status_code < 500, (case.name, r.status_code, r.text)
            assert r.status_code == (200 if case.event == "ping" else 202), case.name
            statuses[r.status_code] += 1
        engine = app.state.engine
        deadline = time.monotonic() + 30
        while inbox.stats(engine).by_state["queued"] + inbox.stats(engine).by_state["processing"]:
            assert time.monotonic() < deadline, inbox.stats(engine)
            time.sleep(0.05)
        assert http.get("/readyz").status_code == 200
        metrics = http.get("/metrics").text
    with engine.connect() as conn:
        stored = dict(
            conn.execute(sa.select(store.deliveries.c.delivery_id, store.deliveries.c.state)).all()
        )
    assert set(stored) == set(ids)  # every one stored
    assert set(stored.values()) == {"ignored"}  # handled by the test forge, none dead
    assert sum(statuses.values()) == len(cases)
    # the test forge read the subject of real pull request payloads
    with engine.connect() as conn:
        subjects = {s for (s,) in conn.execute(sa.select(store.deliveries.c.subject)) if s}
    assert any(s.startswith("github:") and "#" in s for s in subjects)
    assert 'changegate_deliveries_received_total{event="pull_request",forge="github"}' in metrics


def test_end_to_end_over_http_with_a_duplicate(
    make_settings: Callable[..., Settings], forge: MemoryForge
) -> None:
    app = create_app(make_settings(), AppOptions(forges={"github": forge}, workers=2))
    body = payload(repo="acme/app", number=12, head="f00d", files={"deploy/app.yaml": UNPINNED})
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        headers = gh_headers(body, delivery="e2e-1")
        assert http.post("/webhooks/github", content=body, headers=headers).status_code == 202
        assert http.post("/webhooks/github", content=body, headers=headers).status_code == 200
        deadline = time.monotonic() + 10
        while not forge.published:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        page = http.get(httpx.URL(forge.published[0].details_url).path, params={"format": "json"})
        assert page.status_code == 200 and page.json()["decision"] == "fail"
        time.sleep(0.2)
    assert len(forge.published) == 1 and forge.parsed["e2e-1"] == 1


def test_concurrent_deliveries_are_each_answered_after_their_commit(
    make_settings: Callable[..., Settings], forge: MemoryForge
) -> None:
    """32 connections at once, every delivery sent twice (the copies racing each other into
    the same group commit): each id is answered 202 exactly once and 200 otherwise, and
    every 202 is already in the database when it arrives."""
    app = create_app(make_settings(), AppOptions(forges={"github": forge}, workers=0))
    engine = app.state.engine
    ids = [f"burst-{n}" for n in range(96)]

    def post(http: httpx.Client, delivery: str) -> tuple[str, int, bool]:
        body = payload(repo="acme/app", number=int(delivery.split("-")[1]) % 7 + 1, head="abc")
        r = http.post("/webhooks/github", content=body, headers=gh_headers(body, delivery=delivery))
        stored = inbox.get(engine, inbox.key_of("github", delivery)) is not None
        return delivery, r.status_code, stored

    with (
        LiveServer(app) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
        ThreadPoolExecutor(32) as pool,
    ):
        answers = list(pool.map(lambda d: post(http, d), ids + ids))
    by_id: dict[str, list[int]] = {}
    for delivery, status, stored in answers:
        assert stored, f"{delivery} was answered {status} before it was stored"
        by_id.setdefault(delivery, []).append(status)
    assert all(sorted(statuses) == [200, 202] for statuses in by_id.values()), by_id
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.deliveries.c.subject)).scalars().all()
    assert len(rows) == len(ids)
    assert set(rows) == {f"github:acme/app#{n}" for n in range(1, 8)}
