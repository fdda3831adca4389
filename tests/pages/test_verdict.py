"""The verdict page (`/v/{token}`, the check's details URL) and its JSON twin, in process."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from bot.governor import PolicyHolder
from bot.settings import Settings

from .conftest import (
    HEAD,
    NUMBER,
    OLD,
    REPO,
    Seeded,
    blocked_verdict,
    pages_app,
    save_evaluation,
)

BLOB = f"https://github.com/{REPO}/blob/{HEAD}/deploy/production/app.yaml#L10"


def text_of(html: str) -> str:
    """The page's visible text, whitespace collapsed, entities of quotes undone."""
    plain = re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").replace("&#34;", '"')
    return re.sub(r" ([:,])", r"\1", " ".join(plain.split()))


def test_blocked_change_shows_finding_link_fix_and_missing_approval(
    client: TestClient, seeded: Seeded
) -> None:
    r = client.get(f"/v/{seeded.token}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = text_of(r.text)
    assert "Blocked" in page
    assert "1 finding blocks merging; 1 approval is missing." in page
    assert f"{REPO} #{NUMBER}" in page
    assert "Bump the shop to the newest nginx" in page
    assert f'href="https://github.com/{REPO}/pull/{NUMBER}"' in r.text
    assert f'href="https://github.com/{REPO}/commit/{HEAD}"' in r.text
    # the finding: rule, file and line linked at the head commit, message, how to fix
    assert "pinned-images" in page and "deploy/production/app.yaml:10" in page
    assert f'href="{BLOB}"' in r.text
    assert "nginx:latest" in page
    assert "How to fix: Pin the image" in page
    # the missing approval: group, count, members, and the approvals that did not count
    assert "senior: 1 more of 1 needed" in page
    assert "github: alice, carol" in page and "slack: U0ALICE" in page
    assert "Approved nobody yet" in page
    assert "alice (github): given on 0a1b2c3d4e5f, not the head commit" in page
    assert "dave (github): the author cannot approve their own change" in page
    assert "bob (github): not a member of senior" in page


def test_timeline_has_evaluations_requests_decisions_and_refusals(
    client: TestClient, seeded: Seeded
) -> None:
    r = client.get(f"/v/{seeded.token}", params={"format": "json"})
    timeline = r.json()["timeline"]
    texts = [e["text"] for e in timeline]
    assert texts == [
        "Evaluated 0a1b2c3: blocked",
        "Approval requested from senior for 0a1b2c3",
        "U0BOB (slack) tried to approve 0a1b2c3; it did not count: "
        "You are not a member of senior, who can decide on this request.",
        "U0ALICE (slack) approved 0a1b2c3: looks fine",
        "Request for senior at 0a1b2c3 approved: approved by U0ALICE (slack)",
        "Evaluated 3f9c2d1: blocked",
        "Approval requested from senior for 3f9c2d1",
    ]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    current = [e for e in timeline if e.get("current")]
    assert [e["sha"] for e in current] == [HEAD]
    html = client.get(f"/v/{seeded.token}").text
    assert f'href="/v/{seeded.older_token}"' in html  # the older verdict is one click away


def test_an_older_verdict_points_to_the_newest(client: TestClient, seeded: Seeded) -> None:
    older = client.get(f"/v/{seeded.older_token}", params={"format": "json"}).json()
    assert older["head"] == OLD
    assert older["newer"] == f"/v/{seeded.token}"
    assert "see the latest verdict" in client.get(f"/v/{seeded.older_token}").text
    assert client.get(f"/v/{seeded.token}", params={"format": "json"}).json()["newer"] is None


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"format": "json"}, {}),
        ({}, {"Accept": "application/json"}),
        ({}, {"Accept": "application/json;q=0.9, */*;q=0.1"}),
    ],
)
def test_json_twin(
    client: TestClient, seeded: Seeded, params: dict[str, str], headers: dict[str, str]
) -> None:
    r = client.get(f"/v/{seeded.token}", params=params, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["repo"] == REPO and body["number"] == NUMBER and body["head"] == HEAD
    assert body["decision"] == "fail" and body["decision_label"] == "Blocked"
    finding = next(f for f in body["findings"] if f["rule"] == "pinned-images")
    assert finding["url"] == BLOB and finding["line"] == 10 and finding["action"] == "block"
    (missing,) = body["missing_approvals"]
    assert missing["group"] == "senior" and missing["still_needed"] == 1
    assert missing["members"] == {"github": ["alice", "carol"], "slack": ["U0ALICE"]}
    assert {i["who"] for i in missing["ignored"]} == {
        "alice (github)",
        "dave (github)",
        "bob (github)",
    }
    # what scripts of the first, minimal endpoint read is still there
    assert body["verdict"]["decision"] == "fail" and body["verdict"]["head"] == HEAD


@pytest.mark.parametrize(
    "accept",
    ["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "*/*", ""],
)
def test_browsers_and_plain_clients_get_html(
    client: TestClient, seeded: Seeded, accept: str
) -> None:
    r = client.get(f"/v/{seeded.token}", headers={"Accept": accept})
    assert r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "token", ["nope", "tok-older-evaX", "x" * 65, "tok%20older", "%00", "tok-older-eval%27--"]
)
def test_unknown_token_is_404(client: TestClient, seeded: Seeded, token: str) -> None:
    r = client.get(f"/v/{token}")
    assert r.status_code == 404 and "No such verdict" in r.text
    j = client.get(f"/v/{token}", params={"format": "json"})
    assert j.status_code == 404 and j.json()["status"] == 404


def test_the_page_never_leaks_its_url(client: TestClient, seeded: Seeded) -> None:
    r = client.get(f"/v/{seeded.token}")
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert all('rel="noreferrer"' in a for a in re.findall(r"<a [^>]*https://[^>]*>", r.text))


def test_text_from_the_change_is_escaped(
    client: TestClient, engine: Engine, holder: PolicyHolder
) -> None:
    change, verdict = blocked_verdict(holder.policy)
    change = change.__class__(**{**change.__dict__, "title": "<script>alert(1)</script>"})
    save_evaluation(engine, token="tok-xss", change=change, verdict=verdict)
    r = client.get("/v/tok-xss")
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_a_verdict_stored_without_approver_names_still_renders(
    client: TestClient, engine: Engine, holder: PolicyHolder
) -> None:
    change, verdict = blocked_verdict(holder.policy)
    save_evaluation(engine, token="tok-plain", change=change, verdict=verdict, enriched=False)
    r = client.get("/v/tok-plain")
    assert r.status_code == 200
    page = text_of(r.text)
    assert "senior: 1 more of 1 needed" in page and "not recorded with this verdict" in page
    body = client.get("/v/tok-plain", params={"format": "json"}).json()
    assert body["approvals"][0]["approvers"] is None and body["approvals"][0]["ignored"] is None


def test_gitlab_verdict_links_to_the_merge_request(
    engine: Engine, settings: Settings, holder: PolicyHolder
) -> None:
    change, verdict = blocked_verdict(holder.policy)
    change = change.__class__(**{**change.__dict__, "forge": "gitlab"})
    save_evaluation(engine, token="tok-gl", change=change, verdict=verdict)
    gl = settings.model_copy(update={"gitlab_url": "https://gitlab.example.com/"})
    with TestClient(pages_app(engine, gl, holder, None)) as c:
        body = c.get("/v/tok-gl", params={"format": "json"}).json()
        html = c.get("/v/tok-gl").text
    assert body["change_url"] == f"https://gitlab.example.com/{REPO}/-/merge_requests/{NUMBER}"
    pinned = next(f for f in body["findings"] if f["rule"] == "pinned-images")
    assert pinned["url"] == (
        f"https://gitlab.example.com/{REPO}/-/blob/{HEAD}/deploy/production/app.yaml#L10"
    )
    assert f"{REPO} !{NUMBER}" in text_of(html)


def test_findings_already_present_are_shown_apart(
    client: TestClient, engine: Engine, holder: PolicyHolder
) -> None:
    """Issue 15.3: the page and the check summary keep what the change did apart from
    what was already in the file."""
    from bot.change import Change
    from bot.policy.evaluate import evaluate
    from bot.report import markdown_summary
    from bot.views.memory import MemoryView

    from .conftest import DEPLOYMENT

    edited = DEPLOYMENT.replace("name: shop\n", "name: shop\n  labels: {team: web}\n")
    view = MemoryView({"deploy/staging/app.yaml": edited}, {"deploy/staging/app.yaml": DEPLOYMENT})
    view.change = Change(repo=REPO, base="b" * 40, head=HEAD, forge="github", number=NUMBER)
    verdict = evaluate(holder.policy, view)
    [finding] = verdict.findings
    assert (finding.action, finding.preexisting) == ("warn", True)
    save_evaluation(engine, token="t-before", change=view.change, verdict=verdict)
    r = client.get("/v/t-before")
    page = text_of(r.text)
    assert "Nothing blocks this change; 1 already present before this change." in page
    assert "Findings (0) No rule found anything in this change." in page
    assert "Already present before this change (1)" in page
    assert r.text.index('id="preexisting"') > r.text.index('id="findings"')
    assert "nginx:latest" in page.split("Already present before this change (1)")[1]
    summary = markdown_summary(verdict)
    assert "### Findings" not in summary
    assert "### Already present before this change" in summary
    assert "`deploy/staging/app.yaml`:11" in summary.split("### Already present")[1]
