"""CEL engines side by side on real facts: `common-expression-language` (Rust) vs `cel-python`.

    pip install common-expression-language cel-python     # both, for the comparison
    python bench/cel.py DIR [--repeat 5]

DIR is a directory of configuration files. It is read as `changegate scan` reads it, and
the facts `kind: expression` rules see (bot/rules/facts.py: files, images, endpoints,
dependencies) are built from it, a path's environment guessed from its name (`prod` ->
production, `stag` -> staging, `dev` -> development). Then, for each engine and each
expression of `EXPRESSIONS`, it prints:

- compile time (median of `--repeat` compilations);
- evaluation time per fact (the collections bound once, each fact bound and the expression
  run over it, median of `--repeat` passes over every fact);
- how many facts matched: both engines must agree, or the run says so;
- import time (a fresh interpreter, median of 5) and installed size (the distribution and
  the requirements it brings that changegate does not already have).

Last, it runs expressions meant to cost a lot (nested comprehensions) and prints how long
each engine takes on them: neither library has a cost limit or a timeout (checked by
reading their APIs), which is why bot/rules/expression.py bounds evaluation itself.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This script is named like the `cel` module it measures: keep its folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bot.rules.facts import COLLECTIONS, FactSource, change_fact  # noqa: E402
from bot.views.directory import DirectoryView  # noqa: E402

#: (over, expression): what admins write (README, docs/policy-language.md).
EXPRESSIONS: list[tuple[str, str]] = [
    (
        "images",
        "image.environment == 'production' && "
        "(image.digest == '' || image.registry != 'registry.example.com')",
    ),
    (
        "images",
        "image.tag in ['latest', 'stable', 'main'] || (image.tag == '' && image.digest == '')",
    ),
    ("images", "image.registry == 'docker.io' && !image.repository.startsWith('library/')"),
    (
        "images",
        "image.repository.matches('^(library/)?(nginx|redis|postgres)$') && image.tag != ''",
    ),
    (
        "images",
        "images.exists(i, i.environment == 'staging' && i.repository == image.repository "
        "&& i.tag != image.tag)",
    ),
    ("endpoints", "endpoint.kind == 'redis' && !endpoint.host.endsWith('.internal')"),
    ("endpoints", "endpoint.port in [5432, 6379, 3306] && endpoint.environment == 'production'"),
    ("files", "file.status == 'added' && file.path.endsWith('.yaml') && size(file.path) > 40"),
]

#: Expressions that cost n^2 and n^3 element visits in one evaluation, with their n (images).
COSTLY: list[tuple[str, int]] = [
    ("images.all(a, images.exists(b, a.tag == b.tag))", 100),
    ("images.all(a, images.all(b, images.exists(c, a.tag == c.tag && b.line > 0)))", 20),
]


def guess_environment(path: str) -> str:
    lowered = path.lower()
    for needle, name in (("prod", "production"), ("stag", "staging"), ("dev", "development")):
        if needle in lowered:
            return name
    return ""


def collect(root: str) -> dict[str, list[Any]]:
    view = DirectoryView([root])
    files = view.changed_files()
    change = change_fact(view, files, guess_environment)
    source = FactSource(change, files, guess_environment, view)
    return {name: source.collection(name) for name in COLLECTIONS}


class RustEngine:
    name = "common-expression-language"
    dist = "common-expression-language"

    def __init__(self) -> None:
        import cel

        self.cel = cel

    def compile(self, source: str) -> Any:
        return self.cel.compile(source)

    def runner(self, program: Any, facts: dict[str, list[Any]]) -> Callable[[str, Any], Any]:
        # A resolver, as bot/rules/expression.py does: a Context converts every variable it
        # holds on each run (2.6 ms a run with 800 images bound), a resolver only the names
        # the expression reads.
        bound: dict[str, Any] = dict(facts)
        context = self.cel.Context()
        context.set_variable_resolver(bound.get)

        def run(var: str, fact: Any) -> Any:
            bound[var] = fact
            return program.execute(context)

        return run


class PythonEngine:
    name = "cel-python"
    dist = "cel-python"

    def __init__(self) -> None:
        import celpy

        self.celpy = celpy
        self.env = celpy.Environment()

    def compile(self, source: str) -> Any:
        return self.env.program(self.env.compile(source))

    def runner(self, program: Any, facts: dict[str, list[Any]]) -> Callable[[str, Any], Any]:
        activation = {name: self.celpy.json_to_cel(values) for name, values in facts.items()}

        def run(var: str, fact: Any) -> Any:
            activation[var] = self.celpy.json_to_cel(fact)
            return program.evaluate(activation)

        return run


def median_seconds(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_seconds(module: str) -> float:
    times = []
    for _ in range(5):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import time; t=time.perf_counter(); import {module}; "
                "print(time.perf_counter()-t)",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout))
    return statistics.median(times)


def installed_bytes(dist: str) -> tuple[int, list[str]]:
    """Bytes on disk of `dist` and the requirements it pulls in that changegate lacks."""
    ours = _closure("changegate") if _has("changegate") else set()
    todo, seen = [dist], set()
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen or (key in ours and key != dist):
            continue
        seen.add(key)
        todo.extend(_requirements(name))
    total = 0
    for name in seen:
        files = metadata.distribution(name).files or []
        total += sum(f.size or 0 for f in files)
    return total, sorted(seen)


def _has(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _requirements(name: str) -> list[str]:
    reqs = metadata.distribution(name).requires or []
    out = []
    for req in reqs:
        if "extra ==" in req:
            continue
        bare = req.split(";")[0].strip()
        for stop in "<>=!~[ (":
            bare = bare.split(stop)[0]
        if _has(bare):
            out.append(bare)
    return out


def _closure(name: str) -> set[str]:
    todo, seen = [name], set()
    while todo:
        current = todo.pop()
        key = current.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        todo.extend(_requirements(current))
    return seen


def bench_engine(engine: Any, facts: dict[str, list[Any]], repeat: int) -> list[int]:
    matched_counts = []
    for over, source in EXPRESSIONS:
        var = COLLECTIONS[over]
        compile_s = median_seconds(lambda s=source: engine.compile(s), repeat)
        program = engine.compile(source)
        run = engine.runner(program, facts)
        items = facts[over]

        def one_pass(items: list[Any] = items, run: Any = run, var: str = var) -> int:
            # cel-python answers its own BoolType: compare truth, not identity
            return sum(1 for fact in items if bool(run(var, fact)))

        eval_s = median_seconds(one_pass, repeat)
        per_fact = eval_s / max(len(items), 1)
        matched = one_pass()
        matched_counts.append(matched)
        print(
            f"  compile {compile_s * 1e6:8.1f} us   eval {per_fact * 1e6:8.2f} us/fact "
            f"over {len(items):5} {over:<10} matched {matched:5}   {source[:60]}"
        )
    return matched_counts


def bench_costly(engine: Any, facts: dict[str, list[Any]]) -> None:
    for source, n in COSTLY:
        images = facts["images"][:n]
        run = engine.runner(engine.compile(source), {**facts, "images": images})
        start = time.perf_counter()
        run("image", images[0] if images else {})
        print(f"  {time.perf_counter() - start:8.3f} s  n={len(images)}  {source}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    facts = collect(args.dir)
    counts = ", ".join(f"{len(v)} {k}" for k, v in facts.items())
    print(f"facts from {args.dir}: {counts} (built in {time.perf_counter() - start:.2f} s)")
    results = {}
    for engine_class, module in ((RustEngine, "cel"), (PythonEngine, "celpy")):
        engine = engine_class()
        size, dists = installed_bytes(engine.dist)
        print(
            f"\n{engine.name}: import {import_seconds(module) * 1000:.0f} ms, installs "
            f"{size / 1e6:.1f} MB ({', '.join(dists)})"
        )
        results[engine.name] = bench_engine(engine, facts, args.repeat)
        print("  costly expressions, one evaluation:")
        bench_costly(engine, facts)
    rust, python = results.values()
    print("\nmatches agree" if rust == python else f"\nMATCHES DIFFER: {rust} vs {python}")


if __name__ == "__main__":
    main()
