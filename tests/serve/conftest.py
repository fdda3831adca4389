"""`changegate serve` as a user runs it: a real subprocess against the e2e stand-ins."""

from e2e.conftest import (  # noqa: F401  (fixtures)
    app_key,
    github,
    github_server,
    repo,
)
