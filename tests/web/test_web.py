"""The webhook endpoints, in process: verify, store, answer, and nothing more."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from serverkit.fixtures import TcpProxy
from serverkit.testforge import SECRET, UNPINNED, MemoryForge, gh_headers, payload, sign
from slack_sdk.signature import SignatureVerifier
from starlette.testclient import TestClient

from bot import inbox, store
from bot.app import AppOptions, create_app
from bot.policy.schema import PolicyError
from bot.settings import Settings


def count(client: TestClient) -> int:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(store.deliveries)).scalar())


@pytest.fixture
def client_factory(
    make_settings: Callable[..., Settings], forge: MemoryForge
) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(workers: int = 0, **overrides: object) -> TestClient:
        app = create_app(
            make_settings(**overrides), AppOptions(forges={"github": forge}, workers=workers)
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()


def test_signed_delivery_is_stored_before_the_202(client: TestClient) -> None:
    body = payload(repo="acme/app", number=4, head="abc")
    r = client.post("/webhooks/github", content=body, headers=gh_headers(body, delivery="72d3162e"))
    assert r.status_code == 202 and r.json() == {"status": "queued", "delivery": "72d3162e"}
    row = inbox.get(client.app.state.engine, "github:72d3162e")  # type: ignore[attr-defined]
    assert row is not None
    assert (row["state"], row["event"], row["body"], row["subject"]) == (
        "queued",
        "pull_request",
        body,
        "github:acme/app#4",
    )
    assert "x-hub-signature-256" not in row["headers"]
    assert row["headers"]["x-github-delivery"] == "72d3162e"


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "",
        "sha256=" + "0" * 64,
        "sha1=" + hmac.new(SECRET.encode(), b"{}", hashlib.sha1).hexdigest(),  # old algorithm
        "sha256=" + hmac.new(b"wrong secret", b'{"a": 1}', hashlib.sha256).hexdigest(),
        sign(b'{"a": 2}'),  # signature of another body
        sign(b'{"a": 1}').upper(),
        "sha256=\u00e9",  # non-ASCII header value
    ],
)
def test_bad_or_missing_signature_is_401_and_nothing_stored(
    client: TestClient, signature: str | None
) -> None:
    body = b'{"a": 1}'
    headers = gh_headers(body)
    if signature is None:
        del headers["X-Hub-Signature-256"]
    else:
        headers["X-Hub-Signature-256"] = signature
    r = client.post(
        "/webhooks/github",
        content=body,
        headers={k: v.encode() if not v.isascii() else v for k, v in headers.items()},
    )  # type: ignore[misc]
    assert r.status_code == 401
    assert count(client) == 0


def test_no_secret_configured_refuses_every_delivery(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(github_webhook_secret=None)
    body = b"{}"
    r = client.post("/webhooks/github", content=body, headers=gh_headers(body))
    assert r.status_code == 401 and "not configured" in r.json()["status"]
    assert count(client) == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"truncated": ', b"[1, 2, 3]", b'"a string"', b"\xff\xfe{}", b""],
)
def test_malformed_json_is_400_and_nothing_stored(client: TestClient, body: bytes) -> None:
    r = client.post("/webhooks/github", content=body, headers=gh_headers(body))
    assert r.status_code == 400
    assert count(client) == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": 1180591620717411303424}',  # beyond 64 bits: orjson refuses, json reads it
        b'{"s": "\\ud800 lone surrogate"}',
    ],
)
def test_json_objects_the_fast_parser_refuses_are_still_accepted(
    client: TestClient, body: bytes
) -> None:
    r = client.post("/webhooks/github", content=body, headers=gh_headers(body))
    assert r.status_code == 202, r.text
    assert count(client) == 1


@pytest.mark.parametrize("missing", ["X-GitHub-Delivery", "X-GitHub-Event"])
def test_missing_delivery_headers_are_400(client: TestClient, missing: str) -> None:
    body = b"{}"
    headers = gh_headers(body)
    del headers[missing]
    assert client.post("/webhooks/github", content=body, headers=headers).status_code == 400
    assert count(client) == 0


def test_body_over_25_mb_is_413_and_nothing_stored(client: TestClient) -> None:
    body = b'{"x": "' + b"a" * (25 * 1024 * 1024) + b'"}'
    r = client.post("/webhooks/github", content=body, headers=gh_headers(body))
    assert r.status_code == 413
    assert count(client) == 0
    ok = b'{"x": "' + b"a" * (1024 * 1024) + b'"}'
    assert client.post("/webhooks/github", content=ok, headers=gh_headers(ok)).status_code == 202


def test_chunked_body_is_counted_while_reading(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(max_body_bytes=1000)
    body = b'{"x": "' + b"a" * 2000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    headers = gh_headers(body)
    r = client.post("/webhooks/github", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert count(client) == 0


def test_duplicate_delivery_is_200_and_processed_once(
    client_factory: Callable[..., TestClient], forge: MemoryForge
) -> None:
    client = client_factory(workers=1)
    body = payload(repo="acme/app", number=4, head="abc", files={"a.yaml": "image: nginx:1.2.3\n"})
    first = client.post("/webhooks/github", content=body, headers=gh_headers(body))
    second = client.post("/webhooks/github", content=body, headers=gh_headers(body))
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["status"] == "duplicate"
    _wait(lambda: len(forge.published) == 1)
    time.sleep(0.2)
    third = client.post("/webhooks/github", content=body, headers=gh_headers(body))
    assert third.status_code == 200
    time.sleep(0.2)
    assert forge.parsed["d-1"] == 1 and len(forge.published) == 1
    assert count(client) == 1


def test_unknown_event_is_stored_then_ignored(
    client_factory: Callable[..., TestClient], forge: MemoryForge
) -> None:
    client = client_factory(workers=1)
    body = json.dumps({"action": "created", "starred_at": "2024-05-01T12:00:00Z"}).encode()
    r = client.post("/webhooks/github", content=body, headers=gh_headers(body, event="star"))
    assert r.status_code == 202
    engine = client.app.state.engine  # type: ignore[attr-defined]
    _wait(lambda: inbox.get(engine, "github:d-1")["state"] == "ignored")  # type: ignore[index]
    assert forge.published == []


def test_ping_is_answered_at_once(client: TestClient) -> None:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    r = client.post("/webhooks/github", content=body, headers=gh_headers(body, event="ping"))
    assert r.status_code == 200 and r.json()["status"] == "pong"


def test_database_unreachable_is_503_nothing_accepted_then_recovers(
    tmp_path: Path, client_factory: Callable[..., TestClient]
) -> None:
    data = tmp_path / "data"
    client = client_factory(database_url=f"sqlite:///{data / 'cg.db'}")
    engine = client.app.state.engine  # type: ignore[attr-defined]
    assert client.get("/readyz").status_code == 200
    engine.dispose()
    data.rename(tmp_path / "gone")  # the database disappears under the server
    try:
        body = b"{}"
        r = client.post("/webhooks/github", content=body, headers=gh_headers(body))
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "unreachable" in ready.json()["database"]
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        assert client.get("/metrics").status_code == 200
    finally:
        (tmp_path / "gone").rename(data)
    engine.dispose()
    assert count(client) == 0  # nothing was accepted that could not be stored
    r = client.post("/webhooks/github", content=b"{}", headers=gh_headers(b"{}"))
    assert r.status_code == 202
    assert client.get("/readyz").status_code == 200


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["database"] == "ok"
    assert "policy.yml" in ready["policy"]
    body = b"{}"
    client.post("/webhooks/github", content=body, headers=gh_headers(body, event="issues"))
    client.post(
        "/webhooks/github", content=body, headers={**gh_headers(body), "X-Hub-Signature-256": "x"}
    )
    text = client.get("/metrics").text
    assert 'changegate_deliveries_received_total{event="issues",forge="github"}' in text
    assert 'changegate_webhooks_rejected_total{forge="github",reason="signature"}' in text
    assert 'changegate_queue_depth{state="queued"} 1.0' in text
    assert "changegate_policy_loaded 1.0" in text


def _processed(client: TestClient) -> float:
    """How many GitHub pull_request deliveries the processing-time histogram has seen."""
    text = client.get("/metrics").text
    series = 'changegate_processing_seconds_count{event="pull_request",forge="github"} '
    line = next((x for x in text.splitlines() if x.startswith(series)), series + "0")
    return float(line[len(series) :])


def test_processing_time_is_measured_per_delivery(
    client_factory: Callable[..., TestClient], forge: MemoryForge
) -> None:
    client = client_factory(workers=1)
    before = _processed(client)
    body = payload(repo="acme/app", number=12, head="abc")
    client.post("/webhooks/github", content=body, headers=gh_headers(body))
    _wait(lambda: len(forge.published) == 1)
    _wait(lambda: _processed(client) == before + 1)


def test_details_page_shows_the_stored_verdict(
    client_factory: Callable[..., TestClient], forge: MemoryForge
) -> None:
    client = client_factory(workers=1)
    body = payload(repo="acme/app", number=9, head="abc123", files={"k8s.yaml": UNPINNED})
    client.post("/webhooks/github", content=body, headers=gh_headers(body))
    _wait(lambda: len(forge.published) == 1)
    url = forge.published[0].details_url
    assert url.startswith("https://changegate.example.com/v/")
    page = client.get(urllib.parse.urlparse(url).path, params={"format": "json"})
    assert page.status_code == 200
    assert page.json()["decision"] == "fail" and page.json()["head"] == "abc123"
    assert client.get("/v/not-a-token").status_code == 404


def test_gitlab_token_and_idempotency_key(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(gitlab_webhook_secret=SecretStr("gl-secret"))
    body = json.dumps({"object_kind": "merge_request"}).encode()
    headers = {
        "X-Gitlab-Event": "Merge Request Hook",
        "X-Gitlab-Token": "gl-secret",
        "Idempotency-Key": "ik-1",
        "X-Gitlab-Event-UUID": "uuid-1",
    }
    assert client.post("/webhooks/gitlab", content=body, headers=headers).status_code == 202
    assert client.post("/webhooks/gitlab", content=body, headers=headers).status_code == 200
    wrong = {**headers, "X-Gitlab-Token": "gl-secreT", "Idempotency-Key": "ik-2"}
    assert client.post("/webhooks/gitlab", content=body, headers=wrong).status_code == 401
    no_key = {k: v for k, v in headers.items() if k != "Idempotency-Key"}
    assert client.post("/webhooks/gitlab", content=body, headers=no_key).status_code == 202
    assert inbox.get(client.app.state.engine, "gitlab:uuid-1") is not None  # type: ignore[attr-defined]
    assert count(client) == 2


def test_gitlab_without_secret_refuses(client: TestClient) -> None:
    r = client.post("/webhooks/gitlab", content=b"{}", headers={"X-Gitlab-Event": "Push Hook"})
    assert r.status_code == 401 and count(client) == 0


@pytest.mark.parametrize(
    ("age", "valid", "expected"), [(0, True, 200), (0, False, 401), (301, True, 401)]
)
def test_slack_interactions_are_signed_within_five_minutes(
    client_factory: Callable[..., TestClient], age: int, valid: bool, expected: int
) -> None:
    client = client_factory(slack_signing_secret=SecretStr("slack-secret"))
    action = {
        "type": "block_actions",
        "trigger_id": "1337.42",
        "actions": [{"action_id": "approve"}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(action)}).encode()
    ts = str(int(time.time()) - age)
    signature = SignatureVerifier("slack-secret" if valid else "other").generate_signature(
        timestamp=ts, body=body
    )
    r = client.post(
        "/slack/interactions",
        content=body,
        headers={
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert r.status_code == expected
    assert count(client) == (1 if expected == 200 else 0)


def test_invalid_admin_policy_refuses_to_start(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    kind: no-such-kind\n    action: block\n")
    with pytest.raises(PolicyError) as err:
        create_app(make_settings(policy=bad), AppOptions(workers=0))
    assert str(err.value).startswith(f"{bad}:4:")


def test_database_behind_refuses_to_start(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = store.make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE deliveries (id TEXT PRIMARY KEY)")
    engine.dispose()
    with pytest.raises(store.SchemaError, match="run `changegate db upgrade`"):
        create_app(make_settings(database_url=url), AppOptions(workers=0))


def test_policy_reload_keeps_the_last_good_policy(
    client_factory: Callable[..., TestClient], policy_file: Path
) -> None:
    client = client_factory(policy_reload_seconds=0.01)
    holder = client.app.state.policy  # type: ignore[attr-defined]
    original = policy_file.read_text()
    policy_file.write_text(original.replace("action: block", "action: warn"))
    time.sleep(0.05)
    assert str(holder.policy.rules[0].action) == "warn"
    policy_file.write_text("version: 1\nrules: [oops\n")
    time.sleep(0.05)
    assert str(holder.policy.rules[0].action) == "warn"  # last good one kept
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and "last reload failed" in ready["policy"]
    assert ready["policy_error"].startswith(str(policy_file))
    assert "changegate_policy_loaded 0.0" in client.get("/metrics").text


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_postgres_restart_is_503_meanwhile_and_recovers_by_itself(
    pg_schema_url: str, client_factory: Callable[..., TestClient]
) -> None:
    store.upgrade(pg_schema_url)
    direct = sa.engine.make_url(pg_schema_url)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    proxy.start()
    try:
        via_proxy = direct.set(port=proxy.port).render_as_string(hide_password=False)
        client = client_factory(database_url=via_proxy)
        ok = b'{"n": 1}'
        assert (
            client.post(
                "/webhooks/github", content=ok, headers=gh_headers(ok, delivery="a")
            ).status_code
            == 202
        )
        proxy.stop()  # the database goes away, connections in the pool die
        down = b'{"n": 2}'
        for _ in range(3):
            r = client.post(
                "/webhooks/github", content=down, headers=gh_headers(down, delivery="b")
            )
            assert r.status_code == 503
        assert client.get("/readyz").status_code == 503
        proxy.start()  # back: the next request reconnects, no restart needed
        r = client.post("/webhooks/github", content=down, headers=gh_headers(down, delivery="b"))
        assert r.status_code == 202
        assert client.get("/readyz").status_code == 200
        assert count(client) == 2
    finally:
        proxy.stop()
