"""What listing a pull request over GitHub's 3,000-file cap costs: requests and seconds.

Against the GitHub stand-in (real git repositories, `--latency` seconds added to every
answer; GitHub takes ~50 ms), through the real PyGithub client, for a pull request of 3,001
padding files plus one manifest:

- capped: the pull request's file list alone (30 pages), which is all the old code read;
- trees: that list, then the two recursive trees compared (GitHub answers them whole);
- walk: the recursive trees come back `truncated`, so only subtrees that differ are read;
- budget: 700 directories and truncated trees: the walk stops at the 600-request budget.

    python bench/listing.py [--latency 0.05]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bot.forges.github import GitHubForge, GitHubOptions, clear_caches  # noqa: E402
from bot.forges.treediff import Budget  # noqa: E402

from standins.github import GitHubStandIn, app_key_pair  # noqa: E402
from standins.gitrepo import GitRepo  # noqa: E402


def padding(count: int, dirs: int) -> dict[str, str | bytes | None]:
    return {f"pad/d{i % dirs:04}/f{i:05}.txt": f"{i}\n" for i in range(count)}


def run(gh: GitHubStandIn, key: str, tmp: Path, name: str, dirs: int, limit: int) -> None:
    gh.reset()
    gh.tree_entry_limit = limit
    clear_caches()
    git = GitRepo(tmp / f"{name}.git")
    git.commit("main", {"README.md": "# app\n"}, "initial")
    git.commit("big", {**padding(3001, dirs), "zz/k8s/app.yaml": "image: nginx:latest\n"})
    gh.add_repo("acme/app", git, installation_id=1)
    number = gh.open_pull("acme/app", "big").number
    forge = GitHubForge(1, key, gh.url, GitHubOptions(throttle=False, listing_budget=Budget))
    from bot.change import Change

    pull = forge.repo("acme/app").get_pull(number)
    change = Change("acme/app", pull.base.sha, pull.head.sha, "github", number=number)
    gh.reset_calls()
    start = time.perf_counter()
    view = forge.view(change)
    listed = len(view.changed_files())
    unlisted = view.unlisted()
    took = time.perf_counter() - start
    trees = len(gh.calls("GET", r"/git/trees/"))
    print(
        f"{name:8} {listed:6,} files  {len(gh.calls()):4} requests ({trees:3} trees)  "
        f"{took:6.2f} s  {'NOT LISTED: ' + unlisted if unlisted else 'whole'}"
    )


def capped(gh: GitHubStandIn, key: str, tmp: Path) -> None:
    """The baseline: the capped file list alone, as the old code read it."""
    gh.reset()
    clear_caches()
    git = GitRepo(tmp / "capped.git")
    git.commit("main", {"README.md": "# app\n"}, "initial")
    git.commit("big", {**padding(3001, 1), "zz/k8s/app.yaml": "image: nginx:latest\n"})
    gh.add_repo("acme/app", git, installation_id=1)
    number = gh.open_pull("acme/app", "big").number
    forge = GitHubForge(1, key, gh.url, GitHubOptions(throttle=False))
    pull = forge.repo("acme/app").get_pull(number)
    gh.reset_calls()
    start = time.perf_counter()
    files = list(pull.get_files())
    took = time.perf_counter() - start
    print(
        f"{'capped':8} {len(files):6,} files  {len(gh.calls()):4} requests            "
        f"{took:6.2f} s  (zz/k8s/app.yaml missing)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    private, public = app_key_pair()
    with tempfile.TemporaryDirectory() as tmp, GitHubStandIn(1, public, latency=args.latency) as gh:
        print(f"latency {args.latency * 1000:.0f} ms per request")
        capped(gh, private, Path(tmp))
        run(gh, private, Path(tmp), "trees", dirs=1, limit=100_000)
        run(gh, private, Path(tmp), "walk", dirs=4, limit=1000)
        run(gh, private, Path(tmp), "budget", dirs=700, limit=1000)


if __name__ == "__main__":
    main()
