"""Bodies held before their signature is checked: 12 concurrent unsigned 24 MB POSTs took
the server from 100 MB to 532 MB before being refused. Now each endpoint has its own limit
(Slack interactions 64 KB), an unsigned request is refused before its body is read, and the
bodies being read share one budget of unverified bytes (over it: 503)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from e2e.conftest import Harness

from standins.slack import block_actions, form


def raw_request(harness: Harness, path: str, headers: dict[str, str]) -> socket.socket:
    """Sends only the request line and headers: the body is the caller's to send (or not)."""
    sock = socket.create_connection(("127.0.0.1", harness.server.port), timeout=5)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    sock.sendall(head.encode() + b"\r\n")
    return sock


def status_of(sock: socket.socket) -> int:
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_an_unsigned_24_mb_post_is_refused_before_its_body_is_read(harness: Harness) -> None:
    for path, extra in [("/webhooks/github", {"X-GitHub-Event": "push"}),
                        ("/webhooks/gitlab", {"X-Gitlab-Token": "a guess"}),
                        ("/slack/interactions", {})]:  # fmt: skip
        headers = {"Content-Type": "application/json", "Content-Length": str(24 * 1024 * 1024),
                   **extra}  # fmt: skip
        with raw_request(harness, path, headers) as sock:  # no byte of the body is sent
            assert status_of(sock) == 401, path


def test_a_slack_interaction_over_64_kb_is_413(harness: Harness) -> None:
    payload = block_actions(user="U0ALICE", value="x.y.z", action_id="changegate_approve")
    payload["padding"] = "a" * (70 * 1024)
    body = form(payload)
    response = harness.post("/slack/interactions", body, harness.sign(body))
    assert response.status_code == 413


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CHANGEGATE_UNVERIFIED_BODY_BYTES", str(1024 * 1024))
    yield


def test_forged_bodies_in_flight_share_one_budget(small_budget: None, harness: Harness) -> None:
    big = json.dumps({"zen": "x" * (900 * 1024)}).encode()
    forged = {"Content-Type": "application/json", "X-GitHub-Event": "ping",
              "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": "sha256=" + "0" * 64,
              "Content-Length": str(len(big))}  # fmt: skip
    with raw_request(harness, "/webhooks/github", forged) as slow:
        slow.sendall(big[: 800 * 1024])  # held, unverified, while a second one arrives
        body, headers = harness.github_hook("ping", {"zen": "y" * (800 * 1024)})
        time.sleep(0.3)
        assert harness.post("/webhooks/github", body, headers).status_code == 503
        slow.sendall(big[800 * 1024 :])
        assert status_of(slow) == 401  # forged: refused once read, and its bytes given back
    body, headers = harness.github_hook("ping", {"zen": "y" * (800 * 1024)})
    assert harness.post("/webhooks/github", body, headers).status_code == 200
