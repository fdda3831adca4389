"""`changegate worker` with the in-memory forge, for the kill -9 test (run as a script).

argv: DATABASE_URL POLICY_FILE MARKER_DIR [WORKERS] [LEASE_SECONDS]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.settings import Settings  # noqa: E402
from bot.worker import WorkerOptions, run_workers  # noqa: E402
from tests.serverkit.testforge import MemoryForge  # noqa: E402

if __name__ == "__main__":
    url, policy, markers = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    lease = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        policy=Path(policy),
        lease_seconds=lease,
        poll_interval_seconds=0.05,
        worker_count=count,
        redelivery_interval_seconds=0,
    )
    run_workers(settings, WorkerOptions(forges={"github": MemoryForge(marker_dir=Path(markers))}))
