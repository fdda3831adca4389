"""Policy simulation: the server-side fixtures (tests/serverkit/fixtures.py)."""

from serverkit.fixtures import (  # noqa: F401  (fixtures)
    db_url,
    engine,
    forge,
    make_settings,
    pg_schema_url,
    policy_file,
)
