"""Time to verdict: webhook received -> check run completed, for one pull request of many files.

    python bench/time_to_verdict.py [--files 100] [--deliveries 20] [--latency 0.05]
                                    [--reads 1,8,8-unspaced]
                                    [--database-url postgresql://postgres@127.0.0.1:5432/test]

For each `--reads` setting (GitHubOptions.max_concurrent_reads: 1 is one file at a time, as
changegate read before; 8 is the default; `8-unspaced` is 8 without production's spacing of
writes, 1 s apart) on a fresh PostgreSQL schema: one server process (`create_app(Settings())`,
as `changegate serve` builds it, without in-process workers) and one worker process
(`run_workers`, as `changegate worker`, its forge built with that setting), pointed at a
GitHub stand-in (in this process) that answers every API call after `--latency` seconds. Each delivery is a signed
`pull_request` webhook for its own pull request changing `--files` Kubernetes manifests (new
contents each time, so nothing is in the worker's blob cache), posted one at a time: the
clock runs from the POST until the stand-in holds the completed `changegate` check run.
Then one pull request is delivered again at the same head, to count the content requests of a
re-run. The stand-in counts every request of each verdict.

Goal (issue 13): p50 <= 1.5 s and p95 <= 3 s for 100 files at 50 ms per call; requests per
verdict <= 3 + files read; 0 requests for the change's files on a re-run.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ack import APP_ID, SECRET, app_key_pair, changegate_env, machine_note, sign, start_server, stop  # noqa: E402

# bench/e2e.py by its path: `e2e` on sys.path is tests/e2e (ack puts tests/ first)
_spec = importlib.util.spec_from_file_location("bench_e2e", Path(__file__).with_name("e2e.py"))
assert _spec is not None and _spec.loader is not None
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
drop_schema, fresh_schema, wait_for = _e2e.drop_schema, _e2e.fresh_schema, _e2e.wait_for

FILE_READS = ("/git/blobs/", "/contents/", "/git/trees/")


def worker(config: str) -> None:
    """One `changegate worker` process reading up to `reads` files at a time; `-unspaced`
    turns production's spacing of writes (1 s apart) off."""
    reads = int(config.split("-")[0])
    from bot.forges.github import GitHubForge, GitHubOptions
    from bot.settings import Settings
    from bot.worker import WorkerOptions, run_workers

    settings = Settings()
    assert settings.github_private_key_path is not None
    forge = GitHubForge(
        APP_ID,
        settings.github_private_key_path.read_text(),
        settings.github_api_url,
        GitHubOptions(max_concurrent_reads=reads, throttle=not config.endswith("-unspaced")),
    )
    run_workers(settings, WorkerOptions(forges={"github": forge}))


def manifest(tag: str, n: int) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
        f"  name: web-{n}\nspec:\n  replicas: {1 + n % 3}\n"
        "  template:\n    spec:\n      containers:\n        - name: web\n"
        f"          image: registry.example.com/web-{n}:1.4.{tag}\n"
    )


def open_pulls(standin: Any, git: Any, repo: str, files: int, count: int, label: str) -> list[int]:
    """`count` pull requests, each changing `files` manifests to contents never seen before.
    The stand-in reads their blobs now, so that answering one later costs it no `git
    cat-file` processes: the latency per call is then the stand-in's, not its git's."""
    numbers = []
    for i in range(count):
        tag = f"{label}{i}"
        changed = {f"deploy/staging/web-{n}.yaml": manifest(tag, n) for n in range(files)}
        branch = f"ttv-{label}-{i}"
        head = git.commit(branch, changed, f"change {tag}", parent=git.branch_sha("main"))
        for line in git.git("ls-tree", "-r", head).decode().splitlines():
            git.blob(line.split()[2])
        numbers.append(standin.open_pull(repo, branch, title=f"Change {tag}").number)
    return numbers


def blobs_from_memory(git: Any) -> None:
    """The stand-in's repository keeps every blob it read (bench only)."""
    read = git.blob
    kept: dict[str, bytes | None] = {}

    def blob(sha: str) -> bytes | None:
        if sha not in kept:
            kept[sha] = read(sha)
        return kept[sha]

    git.blob = blob


@dataclass
class Verdict:
    seconds: float
    requests: int  # every API request of the delivery, token minting aside
    file_reads: int  # blobs, contents, trees (the change's files and the repository policy)
    other_reads: int  # GETs besides file reads (the pull request, its files, merge base, reviews)
    writes: int  # the check run: created in progress, completed
    change_contents: int  # reads of the change's own files (blobs, contents, trees)


@dataclass
class Result:
    reads: str
    verdicts: list[Verdict] = field(default_factory=list)
    rerun: Verdict | None = None


def classify(seconds: float, recorded: list[Any]) -> Verdict:
    calls = [r for r in recorded if "/access_tokens" not in r.path]
    gets = [r for r in calls if r.method == "GET"]
    files = [r for r in gets if any(k in r.path for k in FILE_READS)]
    own = [r for r in files if not r.path.endswith("/contents/.changegate.yml")]
    return Verdict(seconds, len(calls), len(files), len(gets) - len(files),
                   len(calls) - len(gets), len(own))  # fmt: skip


def deliver(http: httpx.Client, standin: Any, repo: str, number: int) -> Verdict:
    """Post one `pull_request` webhook and wait for its completed check run."""
    payload = standin.pull_request_payload(repo, number, "synchronize")
    head = payload["pull_request"]["head"]["sha"]
    body = standin.webhook("pull_request", payload, SECRET)[0]
    done_before = {r.id for r in standin.check_runs.values() if r.status == "completed"}
    calls_before = len(standin.requests)
    started = time.perf_counter()
    response = http.post(
        "/webhooks/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body),
        },
    )
    assert response.status_code == 202, response.text

    def completed() -> bool:
        return any(
            r.head_sha == head and r.status == "completed" and r.id not in done_before
            for r in list(standin.check_runs.values())
        )

    finished = wait_for(completed, 120, f"no check run on {head[:12]}")
    time.sleep(0.2)  # let the worker finish the delivery before counting its requests
    return classify(finished - started, list(standin.requests[calls_before:]))


def run_config(reads: str, numbers: list[int], rerun: int, *, standin: Any, repo: str,
               workdir: Path, key_path: Path, base_url: str) -> Result:  # fmt: skip
    schema, url = fresh_schema(base_url)
    env = changegate_env(workdir, url, standin.url, key_path, workers=0)
    env["CHANGEGATE_POLL_INTERVAL_SECONDS"] = "0.05"
    procs: list[subprocess.Popen[bytes]] = []
    result = Result(reads)
    try:
        server, port = start_server("changegate", workdir, env)
        procs.append(server)
        log_path = workdir / f"worker-{reads}.log"
        procs.append(
            subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "_worker", str(reads)],
                cwd=workdir,
                env={**env, "CHANGEGATE_WORKER_COUNT": "1"},
                stdout=log_path.open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        wait_for(lambda: "workers started" in log_path.read_text(errors="replace"), 60,
                 "the worker did not start")  # fmt: skip
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for number in numbers:
                result.verdicts.append(deliver(http, standin, repo, number))
            result.rerun = deliver(http, standin, repo, rerun)
    finally:
        for p in procs[1:]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            stop(p)
        drop_schema(base_url, schema)
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(r: Result, files: int) -> str:
    seconds = [v.seconds for v in r.verdicts]
    mean = statistics.mean
    assert r.rerun is not None
    return (
        f"  reads {r.reads}: p50 {statistics.median(seconds):5.2f} s  "
        f"p95 {percentile(seconds, 0.95):5.2f} s  "
        f"requests/verdict {mean(v.requests for v in r.verdicts):5.1f} "
        f"(file reads {mean(v.file_reads for v in r.verdicts):.1f} for {files} files, "
        f"other reads {mean(v.other_reads for v in r.verdicts):.1f}, "
        f"check-run writes {mean(v.writes for v in r.verdicts):.1f})  "
        f"re-run at the same head: {r.rerun.change_contents} reads of the change's files, "
        f"{r.rerun.requests} requests, {r.rerun.seconds:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--deliveries", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--reads", default="1,8")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    settings = args.reads.split(",")

    from standins.github import GitHubStandIn
    from standins.gitrepo import GitRepo

    workdir = Path(tempfile.mkdtemp(prefix="cg-bench-ttv-"))
    private, public = app_key_pair()
    key_path = workdir / "app.pem"
    key_path.write_text(private)
    standin = GitHubStandIn(APP_ID, public, latency=args.latency).start()
    results = []
    try:
        git = GitRepo(workdir / "app.git")
        git.commit("main", {"README.md": "# app\n"}, "initial commit")
        blobs_from_memory(git)
        repo = "acme/app"
        standin.add_repo(repo, git, installation_id=1)
        for reads in settings:
            print(f"reads {reads}: {args.deliveries} pull requests of {args.files} files...",
                  flush=True)  # fmt: skip
            numbers = open_pulls(standin, git, repo, args.files, args.deliveries, f"r{reads}-")
            result = run_config(reads, numbers, numbers[-1], standin=standin, repo=repo,
                                workdir=workdir, key_path=key_path,
                                base_url=args.database_url)  # fmt: skip
            results.append(result)
            print(report(result, args.files), flush=True)
    finally:
        standin.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"time to verdict, {args.files}-file pull request, {args.deliveries} deliveries one "
          f"at a time, stand-in latency {args.latency * 1000:.0f} ms per call, same run:")  # fmt: skip
    for r in results:
        print(report(r, args.files))
    print(f"machine: {machine_note()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(sys.argv[2])
    else:
        sys.exit(main())
