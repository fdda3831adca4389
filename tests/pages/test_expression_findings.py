"""An expression rule's findings on the verdict page, like any other rule's."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from bot.change import Change
from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text
from bot.views.memory import MemoryView

from .conftest import DEPLOYMENT, HEAD, NUMBER, REPO, save_evaluation
from .test_verdict import text_of

POLICY = """\
version: 1
environments:
  production: {paths: ["deploy/production/**"]}
rules:
  - id: release-images
    kind: expression
    action: block
    over: images
    match: image.environment == 'production' && image.registry != 'registry.acme.io'
    message: "{image.reference} in {image.file}: production images come from registry.acme.io"
"""


def test_the_verdict_page_shows_an_expression_finding(client: TestClient, engine: Engine) -> None:
    change = Change(repo=REPO, base="b" * 40, head=HEAD, forge="github", number=NUMBER)
    view = MemoryView({"deploy/production/app.yaml": DEPLOYMENT}, {})
    view.change = change
    verdict = evaluate(load_policy_text(POLICY, "p.yml"), view)
    save_evaluation(engine, token="tok-expression", change=change, verdict=verdict)
    page = text_of(client.get("/v/tok-expression").text)
    assert "Blocked" in page
    assert "release-images" in page and "deploy/production/app.yaml:10" in page
    assert (
        "nginx:latest in deploy/production/app.yaml: production images "
        "come from registry.acme.io" in page
    )
    assert "How to fix: The policy's own rule matched this" in page
