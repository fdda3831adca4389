"""Merge queues: a GitHub merge group as a change to judge on the queue's own commit.

A merge queue tests the target branch with the queued pull requests merged on top, on a
commit of its own (`merge_group.head_sha`, on a `gh-readonly-queue/<base>/pr-<N>-<sha>`
branch); a required check that never reports there holds the queue forever. changegate
judges the queued change, `base_sha..head_sha`, under the subject
`github:<owner>/<repo>@merge_group:<queue branch>`, and reports its `changegate` check run
on `head_sha`.

The approvals of the pull requests in the group carry over file by file
(bot/policy/carryover.py): each request's approvals at its head vouch for the group's files
holding what that request brought. Which requests are in the group: the queue's branch
names the last one; the commits the queue wrote name the others (`Title (#N)` for a squash,
`Merge pull request #N from ...` for a merge). A rebase leaves no number behind: the files
of such requests, and of a request that cannot be read, need their own approval.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from github import UnknownObjectException
from github.PullRequest import PullRequest
from github.Repository import Repository

from bot.change import Change, FileStatus
from bot.forges import Landed, Work
from bot.forges.github.client import GitHubApi
from bot.forges.github.files import GitHubView
from bot.policy.carryover import Files, covered_paths
from bot.views.base import FileView

_QUEUE_BRANCH = re.compile(r"gh-readonly-queue/(?P<base>.+)/pr-(?P<number>\d+)-[0-9a-f]{40}")
#: how the queue's commits name the request they merged, on their first line
_MERGED = re.compile(r"^Merge pull request #(?P<merge>\d+) |\(#(?P<squash>\d+)\)\s*$")


def subject_of(repo: str, payload: dict[str, Any]) -> str:
    """`github:<repo>@merge_group:<queue branch>`: one queue entry, one subject."""
    head_ref = str((payload.get("merge_group") or {}).get("head_ref") or "")
    return f"github:{repo}@merge_group:{head_ref.removeprefix('refs/heads/')}"


def queued_numbers(head_ref: str, messages: Iterable[str]) -> list[int]:
    """The pull requests a group holds, as far as GitHub says: the numbers the queue's
    commit messages name, and the last request, named by the queue's branch."""
    numbers: dict[int, None] = {}
    for message in messages:
        found = _MERGED.search(message.split("\n", 1)[0])
        if found is not None:
            numbers.setdefault(int(found["merge"] or found["squash"]), None)
    branch = _QUEUE_BRANCH.fullmatch(head_ref.removeprefix("refs/heads/"))
    if branch is not None:
        numbers.setdefault(int(branch["number"]), None)
    return list(numbers)


def rerequested(body: dict[str, Any], base: str) -> dict[str, Any] | None:
    """The `merge_group` payload that a check run or suite re-requested on a merge group's
    commit stands for (its check suite's branch is the queue's; `base` from the run's
    `external_id`), or None. A re-run then judges the group as `checks_requested` did, with
    the queued requests' approvals, rather than as a push."""
    suite = body.get("check_suite")
    branch = str((suite if isinstance(suite, dict) else body).get("head_branch") or "")
    found = _QUEUE_BRANCH.fullmatch(branch)
    head = str(body.get("head_sha") or "")
    if found is None or not head or not base:
        return None
    group = {"head_sha": head, "head_ref": f"refs/heads/{branch}", "base_sha": base,
             "base_ref": f"refs/heads/{found['base']}"}  # fmt: skip
    return {"action": "checks_requested", "merge_group": group}


def brought_by(files: Iterable[Any]) -> Files:
    """What a pull request changed (PyGithub `File`s): path -> blob at its head, None for a
    path it deleted or renamed away."""
    brought: dict[str, str | None] = {}
    for item in files:
        if item.status == "renamed" and item.previous_filename:
            brought.setdefault(item.previous_filename, None)
        brought[item.filename] = None if item.status == "removed" else item.sha
    return brought


def group_files(view: FileView, blob_id: Any) -> Files:
    """The group's changed files: path -> blob id at its head (`blob_id(path)`), None for a
    path it deletes or renames away."""
    files: dict[str, str | None] = {}
    for changed in view.changed_files():
        if changed.old_path:
            files.setdefault(changed.old_path, None)
        files[changed.path] = (
            None if changed.status is FileStatus.DELETED else blob_id(changed.path)
        )
    return files


def merge_group_work(api: GitHubApi, payload: dict[str, Any], repo: str, subject: str) -> Work:
    """`checks_requested`: judge `base_sha..head_sha` with the queued requests' approvals
    for what each brought. Any other action (`destroyed`) leaves nothing to check."""
    action = str(payload.get("action") or "")
    if action != "checks_requested":
        why = payload.get("reason")
        return Work("ignore", subject, reason=f"merge_group {action}"
                    + (f" ({why})" if why else "") + ": nothing to check")  # fmt: skip
    group = payload["merge_group"]
    head, base = str(group["head_sha"]), str(group["base_sha"])
    head_ref, target = str(group["head_ref"]), str(group["base_ref"]).removeprefix("refs/heads/")
    gh_repo = api.repo(repo)
    messages = [c.commit.message for c in gh_repo.compare(base, head).commits]
    pulls = _open_pulls(gh_repo, queued_numbers(head_ref, messages), target)
    change = Change(
        repo=repo,
        base=base,
        head=head,
        forge="github",
        author=pulls[-1].user.login if pulls and pulls[-1].user else _sender(payload),
        description="\n\n".join(p.body or "" for p in pulls).strip(),
        title=f"merge queue for {target}: " + ", ".join(f"#{p.number} {p.title}" for p in pulls),
        base_ref=target,
        labels=tuple(sorted({label.name for p in pulls for label in p.labels})),
        draft=False,
    )
    view = GitHubView(api, change)
    files = group_files(view, view.blob_id)
    landed = []
    for pull in pulls:
        covers = covered_paths(files, brought_by(pull.get_files()))
        if covers:
            landed.append(
                Landed(f"github:{repo}#{pull.number}", pull.number, pull.head.sha, covers)
            )
    return Work("evaluate", subject, change=change, event="merge_group", landed=tuple(landed))


def _open_pulls(gh_repo: Repository, numbers: list[int], target: str) -> list[PullRequest]:
    """The queued requests that can be read: open, into the group's target branch. One that
    is gone is left out (its files then need their own approval)."""
    pulls = []
    for number in numbers:
        try:
            pull = gh_repo.get_pull(number)
            if pull.state == "open" and pull.base.ref == target:
                pulls.append(pull)
        except UnknownObjectException:
            continue
    return pulls


def _sender(payload: dict[str, Any]) -> str | None:
    login = (payload.get("sender") or {}).get("login")
    return str(login) if login else None
