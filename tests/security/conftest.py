"""Security tests attack the real server: they reuse the end-to-end harness (the app under
uvicorn, the GitHub, GitLab and Slack stand-ins, signed requests)."""

from e2e.conftest import (  # noqa: F401  (fixtures)
    app_key,
    database_url,
    github,
    github_server,
    gitlab,
    gitlab_server,
    harness,
    policy_text,
    repo,
    slack,
)
