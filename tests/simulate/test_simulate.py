"""`policy simulate`: stored verdicts replayed under a candidate policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from serverkit.testforge import PINNED, UNPINNED, MemoryForge, payload

from bot import simulate, store
from bot.cli import main
from bot.forges import Delivery
from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text

CURRENT = load_policy_text(
    "version: 1\nrules:\n  - {id: pin, kind: unpinned-image, action: warn}\n"
)
CANDIDATE = load_policy_text(
    "version: 1\nrules:\n  - {id: pin, kind: unpinned-image, action: block}\n"
)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    store.upgrade(url)
    engine = store.make_engine(url)
    yield engine
    engine.dispose()


def judge(engine, forge: MemoryForge, number: int, files: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    body = payload(repo="acme/app", number=number, head=f"h{number}", files=files)
    work = forge.parse(Delivery(id=f"d{number}", forge="github", event="pull_request", body=body))
    assert work.change is not None
    verdict = evaluate(CURRENT, forge.view(work.change))
    store.save_evaluation(
        engine,
        store.PublishedVerdict(
            token=store.new_token(),
            forge="github",
            subject=work.subject,
            repo="acme/app",
            number=number,
            verdict=verdict,
            delivery_id=f"d{number}",
        ),
    )


def test_a_stricter_candidate_shows_which_verdicts_would_change(engine) -> None:  # type: ignore[no-untyped-def]
    forge = MemoryForge()
    judge(engine, forge, 1, {"k8s.yaml": UNPINNED})
    judge(engine, forge, 2, {"k8s.yaml": PINNED})
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    replays = simulate.simulate(engine, {"github": forge}, CANDIDATE, since)
    by_subject = {r.subject: r for r in replays}
    assert (by_subject["github:acme/app#1"].was, by_subject["github:acme/app#1"].would_be) == (
        "pass",
        "fail",
    )
    assert by_subject["github:acme/app#1"].changed
    assert not by_subject["github:acme/app#2"].changed
    text = simulate.render(replays)
    assert "CHANGES   github:acme/app#1" in text and "1 verdicts would change" in text


def test_nothing_older_than_since_is_replayed(engine) -> None:  # type: ignore[no-untyped-def]
    forge = MemoryForge()
    judge(engine, forge, 1, {"k8s.yaml": UNPINNED})
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert simulate.simulate(engine, {"github": forge}, CANDIDATE, future) == []


def test_cli_reports_a_forge_that_is_not_configured(
    engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    judge(engine, MemoryForge(), 1, {"k8s.yaml": UNPINNED})
    candidate = tmp_path / "candidate.yml"
    candidate.write_text("version: 1\nrules: []\n")
    monkeypatch.setenv("CHANGEGATE_DATABASE_URL", str(engine.url))
    assert main(["policy", "simulate", str(candidate), "--since", "1d"]) == 0
    out = capsys.readouterr().out
    assert "skipped   github:acme/app#1" in out and "github is not configured here" in out
