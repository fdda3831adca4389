"""`changegate serve` with the in-memory forge and no in-process workers (run as a script).

argv: DATABASE_URL POLICY_FILE PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import uvicorn  # noqa: E402

from bot.app import AppOptions, create_app  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.serverkit.testforge import SECRET, MemoryForge  # noqa: E402

if __name__ == "__main__":
    url, policy, port = sys.argv[1:4]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        policy=Path(policy),
        github_webhook_secret=SECRET,
        worker_count=0,
        redelivery_interval_seconds=0,
    )
    app = create_app(settings, AppOptions(forges={"github": MemoryForge()}))
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")
