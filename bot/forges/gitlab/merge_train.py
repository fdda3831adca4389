"""GitLab merge trains: a train pipeline as a change to judge on the train's own commit.

A merge train runs a pipeline for each car on `refs/merge-requests/<iid>/train`: the target
branch with the merge requests ahead of it and its own merged on top. The pipeline webhook
says so with `object_attributes.source == "merge_request_event"`, that ref, and the merge
request (`merge_request.iid`). changegate judges the train commit against its merge base
with the target branch, under the subject `gitlab:<project>!<iid>/train`, and sets its
`changegate` commit status on the pipeline's SHA (attached to the train ref), as it does for
a merge request: a `failed` status fails the pipeline, and the train drops the car.

As for GitHub's merge queue (bot/forges/github/merge_queue.py), the approvals of the merge
requests in the train carry over file by file (bot/policy/carryover.py). Which requests: the train ref
names its own; the merge commits the train wrote name the others (`See merge request
<project>!<iid>`, GitLab's default merge commit message). A squashed car leaves no number
behind: its files then need their own approval. Only the start of a pipeline is judged
(`created`, `pending`): later pipeline events are the pipeline's own progress, and
changegate's own commit status changes them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from gitlab.exceptions import GitlabError

from bot.change import Change, FileStatus
from bot.forges import Landed, Work
from bot.forges.gitlab.client import GitLabApi
from bot.forges.gitlab.files import GitLabFiles, GitLabView
from bot.policy.carryover import Files, covered_paths

_TRAIN_REF = re.compile(r"refs/merge-requests/(?P<iid>\d+)/train")
_SEE_MR = re.compile(r"See merge request (?:[\w.\-/]+)?!(?P<iid>\d+)")
#: pipeline statuses that mean it is starting: the one moment to judge the train commit
STARTING = frozenset({"created", "pending"})


def is_train_pipeline(payload: dict[str, Any]) -> bool:
    """A pipeline of a merge train car (GitLab's pipeline webhook)."""
    attrs = payload.get("object_attributes") or {}
    return (
        attrs.get("source") == "merge_request_event"
        and _TRAIN_REF.fullmatch(str(attrs.get("ref") or "")) is not None
        and isinstance(payload.get("merge_request"), dict)
    )


def subject_of(path: str, payload: dict[str, Any]) -> str:
    """`gitlab:<project>!<iid>/train`: one car of the train, apart from its merge request."""
    return f"gitlab:{path}!{(payload.get('merge_request') or {}).get('iid')}/train"


def train_numbers(iid: int, messages: Iterable[str]) -> list[int]:
    """The merge requests in the train up to this car: those its merge commits name, then
    the car's own."""
    numbers: dict[int, None] = {}
    for message in messages:
        for found in _SEE_MR.finditer(message):
            numbers.setdefault(int(found["iid"]), None)
    numbers.pop(iid, None)
    numbers[iid] = None
    return list(numbers)


def train_work(api: GitLabApi, payload: dict[str, Any], path: str, subject: str) -> Work:
    """Judge the train commit (the pipeline's SHA) against its merge base with the target
    branch, with the approvals of the requests in the train for what each brought."""
    attrs = payload["object_attributes"]
    status = str(attrs.get("status") or "")
    if status not in STARTING:
        return Work("ignore", subject, reason=f"train pipeline {status}: judged when it started")
    sha = str(attrs.get("sha") or "")
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        return Work("ignore", subject, reason="pipeline payload has no full commit SHA")
    mr_hook = payload["merge_request"]
    iid, target = int(mr_hook["iid"]), str(mr_hook["target_branch"])
    project = api.project(path)
    tip = project.branches.get(target).commit["id"]
    merge_base = project.repository_merge_base([tip, sha])
    assert isinstance(merge_base, dict)
    base = str(merge_base["id"])
    compared = project.repository_compare(base, sha)
    assert isinstance(compared, dict)
    messages = [str(c.get("message") or "") for c in compared.get("commits") or []]
    requests = _open_requests(api, path, train_numbers(iid, messages), target)
    ours = next((mr for mr in requests if mr.iid == iid), None)
    api.refs.put((path.lower(), sha), str(attrs["ref"]))  # the status attaches to the train ref
    change = Change(
        repo=path,
        base=base,
        head=sha,
        forge="gitlab",
        author=(ours.author or {}).get("username") if ours else None,
        description="\n\n".join(mr.description or "" for mr in requests).strip(),
        title=f"merge train for {target}: " + ", ".join(f"!{mr.iid} {mr.title}" for mr in requests),
        base_ref=target,
        labels=tuple(sorted({str(x) for mr in requests for x in mr.labels or ()})),
        draft=False,
    )
    reader = GitLabFiles(api)
    files = _train_files(reader, change)
    landed = []
    for mr in requests:
        covers = covered_paths(files, _brought_by(reader, path, mr))
        if covers:
            landed.append(Landed(f"gitlab:{path}!{mr.iid}", int(mr.iid), str(mr.sha), covers))
    return Work("evaluate", subject, change=change, event="Pipeline Hook", landed=tuple(landed))


def _open_requests(api: GitLabApi, path: str, iids: list[int], target: str) -> list[Any]:
    """The train's merge requests that can be read: open, into the train's target branch."""
    found = []
    for iid in iids:
        try:
            mr = api.project(path).mergerequests.get(iid)
        except GitlabError as exc:
            if getattr(exc, "response_code", None) == 404:
                continue  # gone: its files need their own approval
            raise
        if mr.state == "opened" and mr.target_branch == target:
            found.append(mr)
    return found


def _train_files(reader: GitLabFiles, change: Change) -> Files:
    """The train's changed files: path -> blob id at the train commit (None: deleted)."""
    tree = reader.tree(change.repo, change.head)
    files: dict[str, str | None] = {}
    for changed in GitLabView(reader, change).changed_files():
        if changed.old_path:
            files.setdefault(changed.old_path, None)
        deleted = changed.status is FileStatus.DELETED
        files[changed.path] = None if deleted else tree.get(changed.path)
    return files


def _brought_by(reader: GitLabFiles, path: str, mr: Any) -> Files:
    """What a merge request changed: path -> blob id at its head (None: deleted there)."""
    tree = reader.tree(path, str(mr.sha))
    brought: dict[str, str | None] = {}
    changes = mr.changes()
    assert isinstance(changes, dict)
    for diff in changes.get("changes") or []:
        if diff.get("renamed_file") and diff.get("old_path"):
            brought.setdefault(str(diff["old_path"]), None)
        new_path = str(diff.get("new_path") or "")
        brought[new_path] = None if diff.get("deleted_file") else tree.get(new_path)
    return brought
