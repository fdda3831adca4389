"""A repository's `.changegate.yml` adding an environment must not loosen an admin rule."""

from __future__ import annotations

from e2e.conftest import REPO, Harness, manifest

from standins.gitrepo import GitRepo

SANDBOX_POLICY = 'version: 1\nenvironments:\n  sandbox: {paths: ["sandbox/**"]}\n'


def test_repository_sandbox_environment_does_not_pass_a_production_only_change(
    harness: Harness, repo: GitRepo
) -> None:
    repo.commit("main", {".changegate.yml": SANDBOX_POLICY}, "our own sandbox environment")
    head = repo.commit(
        "change",
        {"deploy/production/app.yaml": manifest(replicas=9), "sandbox/x.txt": "hello\n"},
        "production, and a sandbox file beside it",
    )
    pull = harness.github.open_pull(REPO, head="change", author="bob", title="Scale production")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))
    run = harness.completed_run(head)
    assert run.conclusion == "action_required", (run.title, run.summary)
    assert run.title == "Approval required (prod-only)"
