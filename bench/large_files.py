"""How long one large YAML file takes to judge, next to a bare libyaml parse of it.

    python bench/large_files.py            # 1, 5, 10, 20 and 25 MiB
    python bench/large_files.py 8 16       # sizes in MiB

The file is ConfigMaps (real YAML that every content rule walks) and one Pod with
`nginx:latest` at the end. Prints seconds per size for `yaml.compose_all` with the C loader
and for `evaluate()` with the bundled policy, and their ratio.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.policy.evaluate import evaluate  # noqa: E402
from bot.policy.schema import load_policy_text  # noqa: E402
from bot.views.memory import MemoryView  # noqa: E402

MiB = 1024 * 1024
POD = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
POD += "    - {name: web, image: nginx:latest}\n"


def manifest(size: int) -> str:
    item = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: pad}\ndata:\n" + "".join(
        f"  key{i}: value-{i}-of-some-padding-data\n" for i in range(2000)
    )
    return item * (size // len(item) + 1) + POD


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str]) -> None:
    sizes = [float(a) for a in argv] or [1, 5, 10, 20, 25]
    root = Path(__file__).resolve().parent.parent
    policy = load_policy_text((root / "policies" / "default.yml").read_text())
    print(f"{'MiB':>5} {'bare compose s':>15} {'changegate s':>13} {'ratio':>6}  decision")
    for mib in sizes:
        text = manifest(int(mib * MiB))
        bare, _ = timed(partial(lambda t: list(yaml.compose_all(t, Loader=yaml.CSafeLoader)), text))
        ours, verdict = timed(partial(evaluate, policy, MemoryView({"k8s/big.yaml": text})))
        decision = verdict.decision  # type: ignore[attr-defined]
        print(f"{mib:>5} {bare:>15.2f} {ours:>13.2f} {ours / bare:>6.2f}  {decision}")


if __name__ == "__main__":
    main(sys.argv[1:])
