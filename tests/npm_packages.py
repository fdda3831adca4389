"""Published npm packages the tests read (GitHub's webhook examples, its OpenAPI description).

Each is fetched once with `npm pack` at a pinned version into `.cache/` at the repository
root (gitignored) and unpacked there; a file lock keeps parallel test workers from fetching
the same package twice."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = REPO_ROOT / ".cache"

NPM_MISSING = (
    "the test suite needs npm (Node.js's package manager) to fetch {package}: install npm "
    "(e.g. `apt-get install npm`), or put the unpacked package at {where}"
)


def unpacked(package: str, version: str, *, members: tuple[str, ...] = ()) -> Path:
    """The `package/` directory of `package@version`, fetching it the first time. `members`
    limits what is unpacked (paths inside the tarball, without the `package/` prefix)."""
    home = CACHE / f"{package.strip('@').replace('/', '-')}-{version}"
    done = home / "package" / ".unpacked"
    if done.exists():
        return home / "package"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            _fetch(package, version, home, members)
            done.touch()
    return home / "package"


def _fetch(package: str, version: str, home: Path, members: tuple[str, ...]) -> None:
    if shutil.which("npm") is None:
        raise RuntimeError(NPM_MISSING.format(package=package, where=home / "package"))
    try:
        packed = subprocess.run(
            ["npm", "pack", f"{package}@{version}", "--pack-destination", str(home), "--silent"],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"cannot fetch {package}@{version} with npm: {exc}") from exc
    tarball = home / packed.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as tar:
        wanted = {f"package/{m}" for m in members}
        chosen = [m for m in tar.getmembers() if not wanted or m.name in wanted]
        tar.extractall(home, members=chosen, filter="data")
    tarball.unlink()
