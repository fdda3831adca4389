"""GitHub webhooks to work: which pull request, push or deployment a delivery is about,
read as it is now through the API (a payload's head may be stale)."""

from __future__ import annotations

from typing import Any

from github import UnknownObjectException

from bot.change import Change
from bot.forges import RECHECK, Delivery, Work, common
from bot.forges.github import merge_queue
from bot.forges.github.client import GitHubApi
from bot.forges.github.deploys import deployment_gate

PULL_ACTIONS = frozenset(
    {"opened", "synchronize", "reopened", "edited", "ready_for_review", "labeled", "unlabeled"}
)
REVIEW_ACTIONS = frozenset({"submitted", "dismissed"})
CHECK_ACTIONS = frozenset({"rerequested", "requested_action"})
#: The events the App subscribes to (app.yml); installation events come unasked.
HANDLED_EVENTS = frozenset(
    {
        "pull_request",
        "pull_request_review",
        "push",
        "check_run",
        "check_suite",
        "deployment_protection_rule",
        "merge_group",
    }
)
ZERO_SHA = "0" * 40


class GitHubEvents:
    """Deliveries to `Work`: the pull request, push or deployment each is about."""

    def __init__(self, api: GitHubApi) -> None:
        self.api = api

    def subject_of(self, delivery: Delivery) -> str:
        payload = delivery.payload
        if payload is None:
            return ""
        repo = _repo_name(payload)
        if not repo:
            inst = (payload.get("installation") or {}).get("id")
            return f"github:installation:{inst}" if inst else ""
        event = delivery.event
        if event in ("pull_request", "pull_request_review"):
            number = payload.get("number") or (payload.get("pull_request") or {}).get("number")
            return f"github:{repo}#{number}"
        if event in ("check_run", "check_suite"):
            body = payload.get(event) or {}
            pulls = body.get("pull_requests") or []
            if pulls:
                return f"github:{repo}#{pulls[0].get('number')}"
            return f"github:{repo}@{body.get('head_sha', '')}"
        if event == "push":
            return f"github:{repo}@{payload.get('ref', '')}"
        if event == "deployment_protection_rule":
            return f"github:{repo}@deploy:{payload.get('environment', '')}"
        if event == "merge_group":
            return merge_queue.subject_of(repo, payload)
        return f"github:{repo}"

    def parse(self, delivery: Delivery) -> Work:
        payload = delivery.payload
        if payload is None:
            return Work("ignore", reason="body is not a JSON object")
        subject = self.subject_of(delivery)
        try:
            return self._parse(delivery.event, payload, subject)
        except UnknownObjectException as exc:  # retrying cannot make it exist
            what = subject or delivery.event
            return Work("ignore", subject, reason=f"{what}: not found on GitHub ({exc.status})")
        except (KeyError, TypeError, ValueError) as exc:
            return Work("ignore", subject, reason=f"{delivery.event}: malformed payload ({exc!r})")

    def _parse(self, event: str, payload: dict[str, Any], subject: str) -> Work:
        action = str(payload.get("action") or "")
        if event.startswith("installation") or event == "github_app_authorization":
            return self._installation_event(event, action, payload, subject)
        repo = _repo_name(payload)
        installation = (payload.get("installation") or {}).get("id")
        if not repo:
            return Work("ignore", subject, reason=f"{event}: no repository")
        if not isinstance(installation, int):
            return Work("ignore", subject, reason=f"{event}: no installation in the payload")
        self.api.remember_installation(repo, installation)

        if event == "pull_request":
            if action not in PULL_ACTIONS:
                return Work("ignore", subject, reason=f"pull_request {action} is not evaluated")
            number = payload.get("number") or payload["pull_request"]["number"]
            stated = (payload.get("pull_request") or {}).get("head", {}).get("sha")
            return self._evaluate_pull(repo, int(number), subject, event, stated)
        if event == "pull_request_review":
            if action not in REVIEW_ACTIONS:
                return Work(
                    "ignore", subject, reason=f"pull_request_review {action} changes nothing"
                )
            number = payload["pull_request"]["number"]
            stated = payload["pull_request"].get("head", {}).get("sha")
            return self._evaluate_pull(repo, int(number), subject, event, stated)
        if event in ("check_run", "check_suite"):
            return self._check_event(event, action, payload, repo, subject)
        if event == "push":
            return self._push(payload, repo, subject)
        if event == "deployment_protection_rule":
            return deployment_gate(self.api, payload, repo, subject)
        if event == "merge_group":
            return merge_queue.merge_group_work(self.api, payload, repo, subject)
        return Work("ignore", subject, reason=f"event {event} is not handled")

    def change_work(self, repo: str, number: int) -> Work:
        """Re-evaluation of a pull request as it is now (after a Slack decision)."""
        try:
            return self._evaluate_pull(repo, number, f"github:{repo}#{number}", RECHECK, None)
        except UnknownObjectException as exc:
            return Work("ignore", reason=f"{repo}#{number}: not found on GitHub ({exc.status})")

    def _installation_event(
        self, event: str, action: str, payload: dict[str, Any], subject: str
    ) -> Work:
        inst = (payload.get("installation") or {}).get("id")
        if action in ("deleted", "suspend") and isinstance(inst, int):
            self.api.forget_installation(inst)
        return Work("ignore", subject, reason=f"{event} {action}: bookkeeping only")

    def _evaluate_pull(
        self, repo: str, number: int, subject: str, event: str, stated: str | None
    ) -> Work:
        """Evaluate the pull request as it is now, whatever head the payload named."""
        pull = self.api.repo(repo).get_pull(number)
        state = pull.state  # a 404 (pull request or installation gone) is ignored by parse()
        if state != "open":
            return Work("ignore", subject, reason=f"{repo}#{number} is {state}")
        change = Change(
            repo=repo,
            base=pull.base.sha,
            head=pull.head.sha,
            forge="github",
            author=pull.user.login if pull.user else None,
            description=pull.body or "",
            title=pull.title or "",
            number=number,
            url=pull.html_url,
            base_ref=pull.base.ref,
            labels=tuple(label.name for label in pull.labels),
            draft=bool(pull.draft),
        )
        if stated and stated != change.head:
            reason = f"payload named head {stated[:12]}; evaluating current head {change.head[:12]}"
            return Work("evaluate", subject, change, reason, event=event, payload_head=stated)
        return Work("evaluate", subject, change=change, event=event)

    def _check_event(
        self,
        event: str,
        action: str,
        payload: dict[str, Any],
        repo: str,
        subject: str,
    ) -> Work:
        if action not in CHECK_ACTIONS or (event == "check_suite" and action != "rerequested"):
            return Work("ignore", subject, reason=f"{event} {action} is not ours to act on")
        body = payload.get(event) or {}
        app_id = (body.get("app") or {}).get("id")
        if app_id is not None and int(app_id) != self.api.app_id:
            return Work("ignore", subject, reason=f"{event} of another app ({app_id})")
        head = str(body.get("head_sha") or "")
        numbers = [int(p["number"]) for p in body.get("pull_requests") or [] if "number" in p]
        if not numbers and head:
            commit = self.api.repo(repo).get_commit(head)
            numbers = [p.number for p in commit.get_pulls() if p.state == "open"]
        if numbers:  # a commit in several pull requests: the first one's check run
            return self._evaluate_pull(repo, numbers[0], f"github:{repo}#{numbers[0]}", event, head)
        external = str(body.get("external_id") or "")
        if external.startswith("push:") and head:
            base = external.removeprefix("push:")
            queued = merge_queue.rerequested(body, base)
            if queued is not None:  # a merge group's check run: judged as the group again
                queued["sender"] = payload.get("sender")
                group_subject = merge_queue.subject_of(repo, queued)
                return merge_queue.merge_group_work(self.api, queued, repo, group_subject)
            change = Change(repo=repo, base=base, head=head, forge="github", title="push")
            return Work("evaluate", subject, change=change, event=event)
        return Work("ignore", subject, reason=f"{event}: no open pull request for {head[:12]}")

    def _push(self, payload: dict[str, Any], repo: str, subject: str) -> Work:
        ref = str(payload.get("ref") or "")
        default = (payload.get("repository") or {}).get("default_branch")
        before, after = str(payload.get("before") or ""), str(payload.get("after") or "")
        if not ref.startswith("refs/heads/"):
            return Work("ignore", subject, reason=f"push to {ref}: not a branch")
        if payload.get("deleted") or after == ZERO_SHA:
            return Work("ignore", subject, reason=f"{ref} deleted")
        if ref != f"refs/heads/{default}":
            return Work("ignore", subject, reason=f"push to {ref}: not the default branch")
        if before == ZERO_SHA or not before:
            return Work("ignore", subject, reason=f"{ref} created: no range to check")
        head_commit = payload.get("head_commit") or {}
        message = str(head_commit.get("message") or "")
        change = Change(
            repo=repo,
            base=before,
            head=after,
            forge="github",
            author=(payload.get("sender") or {}).get("login"),
            description=message,
            title=f"push to {default}",
            base_ref=str(default),
            draft=False,
        )
        merged = [_merged(repo, p) for p in self._merged_pulls(repo, after, str(default))]
        if not merged:
            return Work("evaluate", subject, change=change, event="push")
        tree = self._tree_of(repo, after)
        landed = common.landed(merged, lambda m: self._tree_of(repo, m.head) == tree)
        change = common.landed_change(change, merged, "#")
        return Work("evaluate", subject, change=change, event="push", landed=landed)

    def _tree_of(self, repo: str, sha: str) -> str:
        return str(self.api.repo(repo).get_git_commit(sha).tree.sha)

    def _merged_pulls(self, repo: str, sha: str, default: str) -> list[Any]:
        """The pull requests merged into `default` as commit `sha` (a merge or squash
        commit): a push of a merge is the pull request landing, and its description (the
        playbook link, say) is the pull request's, not the merge commit's message."""
        pulls = self.api.repo(repo).get_commit(sha).get_pulls()
        return [p for p in pulls if p.merged_at is not None and p.base.ref == default]


def _merged(repo: str, pull: Any) -> common.Merged:
    return common.Merged(
        subject=f"github:{repo}#{pull.number}",
        number=pull.number,
        title=pull.title,
        description=pull.body or "",
        author=pull.user.login if pull.user else None,
        labels=tuple(label.name for label in pull.labels),
        head=pull.head.sha,
    )


def _repo_name(payload: dict[str, Any]) -> str:
    repo = payload.get("repository")
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) and "/" in name else ""
