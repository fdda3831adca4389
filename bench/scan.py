"""Scan throughput, side by side in one run: changegate vs a bare libyaml parse vs checkov.

    python bench/scan.py [DIR] [--repeat 3] [--checkov PATH]

Prints files/s for `changegate scan` (the bundled policy's content rules, in-process), the
time of a bare `yaml.compose_all` with the C loader over the same YAML files (the floor for
any libyaml-based scanner), and the time of checkov restricted to its image-pinning checks
(CKV_K8S_14, CKV_DOCKER_7) on the same directory, plus recall against checkov: of the
resources checkov fails for an unpinned image, how many changegate also flags.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.change import Decision  # noqa: E402
from bot.cli.check import without_cycle_collection  # noqa: E402
from bot.policy.evaluate import evaluate  # noqa: E402
from bot.policy.schema import load_policy_file  # noqa: E402
from bot.policy.sources import bundled_policy_path  # noqa: E402
from bot.views.directory import DirectoryView  # noqa: E402

CHECKOV_CHECKS = "CKV_K8S_14,CKV_DOCKER_7"


def yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def bare_parse(files: list[Path], *, collect_cycles: bool = True) -> float:
    """The plain loop (the issue's floor); without cycle collection as a second figure."""
    if not collect_cycles:
        with without_cycle_collection():
            return bare_parse(files)
    start = time.perf_counter()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            for _ in yaml.compose_all(text, Loader=yaml.CSafeLoader):
                pass
        except (yaml.YAMLError, UnicodeDecodeError):
            pass
    return time.perf_counter() - start


def changegate_scan(root: Path) -> tuple[float, int, list[dict[str, object]]]:
    policy = load_policy_file(bundled_policy_path())
    policy = policy.model_copy(update={"rules": [r for r in policy.rules if r.reads_contents]})
    start = time.perf_counter()
    view = DirectoryView([str(root)])
    with without_cycle_collection():  # as `changegate scan` runs it
        verdict = evaluate(policy, view)
    elapsed = time.perf_counter() - start
    assert verdict.decision in tuple(Decision)
    findings = [f.as_dict() for f in verdict.findings]
    return elapsed, len(view.head_paths()), findings


def checkov(root: Path, exe: str) -> tuple[float, list[tuple[str, int, int]]]:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [
                exe,
                "-d",
                str(root),
                "--check",
                CHECKOV_CHECKS,
                "--framework",
                "kubernetes,dockerfile",
                "-o",
                "json",
                "--output-file-path",
                out,
                "--quiet",
                "--compact",
                "--skip-download",
                "--download-external-modules",
                "false",
            ],
            capture_output=True,
            check=False,
            env={**os.environ, "LOG_LEVEL": "ERROR"},
        )
        elapsed = time.perf_counter() - start
        failures: list[tuple[str, int, int]] = []
        for report in Path(out).glob("*.json"):
            data = json.loads(report.read_text())
            for block in data if isinstance(data, list) else [data]:
                for failed in block.get("results", {}).get("failed_checks", []):
                    first, last = failed["file_line_range"]
                    failures.append((failed["file_path"].lstrip("/"), first, last))
    return elapsed, failures


def recall(
    failures: list[tuple[str, int, int]], findings: list[dict[str, object]], root: Path
) -> dict[str, int]:
    """Classify checkov's failures: also blocked by changegate, only warned (a placeholder
    such as `<image_url>` or `$PROJECT/app`), or missed; `no image` are resources with no
    image reference at all (kustomize patches), which checkov fails by mistake."""
    ours: dict[str, list[tuple[int, str]]] = {}
    for f in findings:  # scanned as an absolute root: relative to it
        if f["kind"] == "unpinned-image":
            rel = os.path.relpath(str(f["path"]), str(root))
            ours.setdefault(rel, []).append((int(f["line"] or 0), str(f["action"])))
    counts = {"blocked": 0, "warned": 0, "no image": 0, "missed": 0}
    for path, first, last in failures:  # checkov: relative to -d with a leading "/"
        rel = path.lstrip("/")
        hits = [a for line, a in ours.get(rel, []) if first <= line <= last]
        if any(a != "warn" for a in hits):
            counts["blocked"] += 1
        elif hits:
            counts["warned"] += 1
        elif not _has_image(root / rel, first, last):
            counts["no image"] += 1
        else:
            counts["missed"] += 1
    return counts


def _has_image(path: Path, first: int, last: int) -> bool:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[first - 1 : last]
    except (OSError, UnicodeDecodeError):
        return True
    return any('"image"' in line or "image:" in line for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "dir", help="a directory of real configuration files (e.g. a checkout of several repos)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--checkov",
        default=shutil.which("checkov")
        or str(ROOT / "bench" / ".venv-checkov" / "bin" / "checkov"),
    )
    args = parser.parse_args()
    root = Path(args.dir).resolve()
    files = yaml_files(root)
    size = sum(p.stat().st_size for p in files)
    print(f"corpus: {root} — {len(files)} YAML files, {size / 1e6:.1f} MB")

    bare = [bare_parse(files) for _ in range(args.repeat)]
    bare_nogc = statistics.median(
        bare_parse(files, collect_cycles=False) for _ in range(args.repeat)
    )
    scans = [changegate_scan(root) for _ in range(args.repeat)]
    scan_times = [s[0] for s in scans]
    scanned, findings = scans[0][1], scans[0][2]
    b, s = statistics.median(bare), statistics.median(scan_times)
    print(f"bare yaml.compose_all (C loader): {b:.2f} s median of {args.repeat}")
    print(
        f"changegate scan (in-process):     {s:.2f} s median of {args.repeat} — "
        f"{scanned / s:,.0f} files/s over {scanned} files, {len(findings)} findings"
    )
    print(f"bare, cycle collector off:        {bare_nogc:.2f} s median (as changegate scans)")
    print(
        f"ratio changegate / bare parse:    {s / b:.2f}x (target: within 2x); "
        f"{s / bare_nogc:.2f}x against the bare loop with the collector off"
    )

    if Path(args.checkov).exists():
        ck_time, failures = checkov(root, args.checkov)
        counts = recall(failures, findings, root)
        print(
            f"checkov --check {CHECKOV_CHECKS}: {ck_time:.2f} s — {len(failures)} failed resources"
        )
        print(f"ratio checkov / changegate:       {ck_time / s:.1f}x (target: at least 20x)")
        real = len(failures) - counts["no image"]
        print(
            f"recall vs checkov:                {counts['blocked'] + counts['warned']}/{real} "
            f"of checkov's failures on resources that have an image "
            f"({counts['blocked']} blocked, {counts['warned']} warned as placeholders, "
            f"{counts['missed']} missed); {counts['no image']} checkov failures are on "
            "resources with no image at all (kustomize patches)"
        )
    else:
        print(f"checkov not found at {args.checkov}: see bench/README.md")


if __name__ == "__main__":
    main()
