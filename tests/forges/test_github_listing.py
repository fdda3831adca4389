"""Changes over GitHub's listing caps (3,000 pull request files, 300 compare files) are read
from their git trees, through the real PyGithub client against the stand-in."""

from __future__ import annotations

from typing import Any

from test_github import deliver, open_pull

from bot.change import Decision, FileStatus
from bot.forges.github import GitHubForge, GitHubOptions, clear_caches
from bot.forges.treediff import Budget
from bot.policy.evaluate import evaluate
from bot.policy.schema import load_policy_text

from standins.github import GitHubStandIn
from standins.gitrepo import GitRepo

LATEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:latest
"""
POLICY = """\
version: 1
rules:
  - id: pinned-images
    kind: unpinned-image
    action: block
"""


def padding(count: int, dirs: int = 1) -> dict[str, Any]:
    """`count` harmless files spread over `dirs` directories, sorted before `zz/`."""
    return {f"pad/d{i % dirs:04}/f{i:05}.txt": f"{i}\n" for i in range(count)}


def pull_view(forge: GitHubForge, github: GitHubStandIn, repo: GitRepo, files: dict[str, Any]):
    number = open_pull(github, repo, files)
    work = forge.parse(deliver("pull_request", github.pull_request_payload("acme/app", number)))
    assert work.change is not None
    return forge.view(work.change)


def test_a_pull_request_over_3000_files_is_listed_from_its_trees(forge, github, make_repo):
    repo = make_repo(files={"README.md": "# app\n", "static/keep.txt": "same\n"})
    view = pull_view(forge, github, repo, {**padding(3001), "zz/k8s/app.yaml": LATEST})

    listed = {f.path: f.status for f in view.changed_files()}
    assert len(listed) == 3002
    assert listed["zz/k8s/app.yaml"] is FileStatus.ADDED
    assert view.unlisted() is None
    assert view.read("zz/k8s/app.yaml") == LATEST.encode()
    assert len(github.calls("GET", r"/pulls/1/files$")) == 30  # the capped list, all read
    verdict = evaluate(load_policy_text(POLICY), view)
    assert verdict.decision is Decision.FAIL
    assert [f.path for f in verdict.findings] == ["zz/k8s/app.yaml"]


def test_a_truncated_tree_is_walked_only_where_the_trees_differ(forge, github, make_repo):
    unchanged = {f"static/s{i:04}.txt": "same\n" for i in range(200)}
    repo = make_repo(files={"README.md": "# app\n", **unchanged})
    github.tree_entry_limit = 1000  # every recursive listing comes back `truncated`
    view = pull_view(
        forge,
        github,
        repo,
        {**padding(3001, dirs=4), "zz/k8s/app.yaml": LATEST, "README.md": None},
    )

    listed = {f.path: f.status for f in view.changed_files()}
    assert len(listed) == 3003
    assert listed["zz/k8s/app.yaml"] is FileStatus.ADDED
    assert listed["README.md"] is FileStatus.DELETED
    assert view.unlisted() is None
    static_tree = repo.git("rev-parse", "main:static").decode().strip()
    assert github.calls("GET", rf"/git/trees/{static_tree}$") == []  # same id: not descended


def test_a_push_over_300_files_is_listed_from_its_trees(forge, github, make_repo):
    repo = make_repo()
    before = repo.branch_sha("main")
    after = repo.commit("main", {**padding(300), "zz/k8s/app.yaml": LATEST}, "big push")
    work = forge.parse(deliver("push", github.push_payload("acme/app", "main", before, after)))
    assert work.change is not None
    view = forge.view(work.change)

    assert len(view.changed_files()) == 301
    assert "zz/k8s/app.yaml" in {f.path for f in view.changed_files()}
    assert view.unlisted() is None
    assert len(github.calls("GET", r"/compare/")) == 1


def test_a_change_not_listed_within_the_budget_fails_and_says_why(
    forge, github, make_repo, app_key
):
    forge = GitHubForge(
        forge.app_id,
        app_key[0],
        github.url,
        GitHubOptions(
            throttle=False, backoff_factor=0.001, listing_budget=lambda: Budget(max_requests=5)
        ),
    )
    repo = make_repo()
    github.tree_entry_limit = 100
    view = pull_view(forge, github, repo, {**padding(3001, dirs=40), "zz/k8s/app.yaml": LATEST})

    reason = view.unlisted()
    assert reason is not None
    assert "3,000 files" in reason and "more than 5 API requests" in reason
    verdict = evaluate(load_policy_text(POLICY), view)
    assert verdict.decision is Decision.FAIL
    [finding] = [f for f in verdict.findings if f.rule == "changegate"]
    assert (finding.kind, finding.path, str(finding.action)) == ("incomplete-change", "", "block")
    assert len(github.calls("GET", r"/git/trees/")) <= 5


def test_a_truncated_head_tree_is_read_tree_by_tree_or_the_change_fails(
    forge, github, make_repo, app_key
):
    repo = make_repo(files={"README.md": "# app\n", **padding(1500, dirs=3)})
    github.tree_entry_limit = 1000  # the recursive listing of head comes back `truncated`
    view = pull_view(forge, github, repo, {"zz/k8s/app.yaml": LATEST})

    assert len(view.head_paths()) == 1502
    assert view.unlisted() is None

    tight = GitHubForge(
        forge.app_id,
        app_key[0],
        github.url,
        GitHubOptions(throttle=False, listing_budget=lambda: Budget(max_requests=2)),
    )
    clear_caches()  # no tree read whole before
    tight_view = tight.view(view.change)
    assert len(tight_view.head_paths()) < 1502  # what GitHub gave: not all
    reason = tight_view.unlisted()
    assert reason is not None and "could not read it tree by tree" in reason
