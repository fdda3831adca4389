"""An in-memory forge: a test double of our own Forge seam, not of any client library.

Payloads are small JSON objects that say what the forge should do with them:

    {"repo": "acme/app", "number": 7, "head": "abc", "files": {"k8s.yaml": "..."}}
    {"ignore": "why"}        -> Work("ignore")
    {"fail": 2, ...}         -> parse raises on the first 2 attempts of that delivery
    {"sleep": 0.5, ...}      -> parse sleeps first (to hold a lease)
    {"work": "deployment-gate"} -> Work("deployment-gate")

Real GitHub payloads (octokit examples) are understood enough to compute a subject, and
are otherwise ignored, like the real forge does for events it does not handle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.change import Approval, Change, Verdict
from bot.forges import Delivery, Work
from bot.policy.approvers import Directory
from bot.views.base import FileView
from bot.views.memory import MemoryView

SECRET = "It's a Secret to Everybody"

UNPINNED = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:latest\n"
PINNED = UNPINNED.replace("nginx:latest", "nginx:1.25.3")


class _View(MemoryView):
    def __init__(self, change: Change, head: dict[str, str], base: dict[str, str]) -> None:
        super().__init__(head, base)
        self.change = change


@dataclass
class Published:
    change: Change
    verdict: Verdict
    details_url: str
    delivery_head: str


@dataclass
class MemoryForge:
    name: str = "github"
    repo_policy: str | None = None
    marker_dir: Path | None = None  # parse() touches <delivery id>.started here
    parsed: Counter[str] = field(default_factory=Counter)
    started: list[tuple[str, str]] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    concurrent: Counter[str] = field(default_factory=Counter)  # subject -> in flight now
    overlaps: list[str] = field(default_factory=list)  # subjects seen twice at once
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _trees: dict[tuple[str, str], tuple[dict[str, str], dict[str, str]]] = field(
        default_factory=dict
    )
    _changes: dict[tuple[str, int], Change] = field(default_factory=dict)

    def subject_of(self, delivery: Delivery) -> str:
        payload = json.loads(delivery.body)
        if "subject" in payload:
            return str(payload["subject"])
        repo = payload.get("repo") or (payload.get("repository") or {}).get("full_name")
        number = payload.get("number") or (payload.get("pull_request") or {}).get("number")
        return f"{self.name}:{repo}#{number}" if repo and number else ""

    def parse(self, delivery: Delivery) -> Work:
        payload = json.loads(delivery.body)
        subject = self.subject_of(delivery)
        with self._lock:
            self.parsed[delivery.id] += 1
            attempt = self.parsed[delivery.id]
            self.concurrent[subject] += 1
            if subject and self.concurrent[subject] > 1:
                self.overlaps.append(subject)
        try:
            if self.marker_dir is not None:
                (self.marker_dir / f"{delivery.id}.started").write_text(str(attempt))
            if payload.get("sleep"):
                time.sleep(float(payload["sleep"]))
            if attempt <= int(payload.get("fail", 0)):
                raise RuntimeError(f"injected failure {attempt}")
            if "work" in payload:  # another action than evaluate, e.g. "deployment-gate"
                return Work(str(payload["work"]), subject)
            if "ignore" in payload or "head" not in payload:
                return Work(
                    "ignore", subject, reason=str(payload.get("ignore", "not a test change"))
                )
            change = Change(
                repo=payload["repo"],
                base=payload.get("base", "base"),
                head=payload["head"],
                forge=self.name,
                author=payload.get("author"),
                description=payload.get("description", ""),
                number=payload.get("number"),
            )
            with self._lock:
                self._trees[(change.repo, change.head)] = (
                    payload.get("files", {}),
                    payload.get("base_files", {}),
                )
                if change.number is not None:
                    self._changes[(change.repo, change.number)] = change
            return Work("evaluate", subject, change=change)
        finally:
            with self._lock:
                self.concurrent[subject] -= 1

    def change_work(self, repo: str, number: int) -> Work:
        change = self._changes.get((repo, number))
        if change is None:
            return Work("ignore", reason=f"{repo}#{number}: unknown")
        return Work("evaluate", f"{self.name}:{repo}#{number}", change=change)

    def view(self, change: Change) -> FileView:
        head, base = self._trees[(change.repo, change.head)]
        return _View(change, head, base)

    def repository_policy(self, change: Change) -> str | None:
        return self.repo_policy

    def approvals(self, change: Change) -> list[Approval]:
        return []

    def directory(self, entries: list[str]) -> Directory:
        return Directory()

    def start(self, change: Change, details_url: str) -> None:
        with self._lock:
            self.started.append((change.head, details_url))

    def publish(self, change: Change, verdict: Verdict, details_url: str) -> None:
        with self._lock:
            self.published.append(Published(change, verdict, details_url, change.head))


def payload(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def gh_headers(
    body: bytes, event: str = "pull_request", delivery: str = "d-1", **extra: str
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(body),
        "Content-Type": "application/json",
        **extra,
    }
