"""`env-drift`: a key set in production configuration that no other environment sets.

The outage: a production-only setting pointed a module at the wrong Redis. A key that
staging also sets has been exercised there; one that only production's values, manifests,
compose or `.env` files set has not. The change is judged at the keys it added or changed;
every other environment's files are read from the head tree (as `shared-resource` does),
so a key staging set long ago counts even when this change does not touch staging.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import Field

from bot.change import ChangedFile, Finding
from bot.formats.envkeys import ConfigKey, config_keys, is_config_file
from bot.policy.preexisting import lines_touched
from bot.rules.base import RuleBase, RuleContext
from bot.rules.prod_only import ProdOnlyChangeOptions

#: How many looked-in files a message names before "and N more".
MAX_NAMED = 3


class EnvDriftOptions(ProdOnlyChangeOptions):
    # which environments are production: the same option as prod-only-change's (no docstring:
    # it would become the schema's description)
    pass


class EnvDriftRule(RuleBase):
    kind: Literal["env-drift"] = "env-drift"
    options: EnvDriftOptions = Field(default_factory=EnvDriftOptions)

    reads_contents = True
    judges = "lines"

    def check(self, ctx: RuleContext) -> list[Finding]:
        production = set(self.options.production)
        order = [name for name in ctx.environments if name not in production]
        if not order:
            return []  # no other environment to compare with
        findings: list[Finding] = []
        candidates: list[tuple[str, ConfigKey]] = []
        for changed in self.changed_files(ctx):
            envs = ctx.environment_of(changed.path, self)
            if not envs or not set(envs) <= production or not is_config_file(changed.path):
                continue
            keyed = config_keys(ctx.view, changed.path)
            if keyed.problem:
                findings.append(self.unreadable(changed.path, keyed.problem, keyed.problem_line))
                continue
            touched = self._touched(ctx, changed)
            seen: set[str] = set()
            for key in keyed.keys:
                if key.name not in seen and (touched is None or key.touched_by(touched)):
                    seen.add(key.name)
                    candidates.append((changed.path, key))
        if not candidates:
            return findings
        elsewhere, looked_in, problems = self._other_keys(ctx, production)
        findings.extend(problems)
        for path, key in candidates:
            if key.name not in elsewhere:
                findings.append(self._finding(path, key, looked_in, order))
        return findings

    def _touched(self, ctx: RuleContext, changed: ChangedFile) -> frozenset[int] | None:
        """Lines of a changed file the change touched; None when every key is judged (a
        scan, `scope: file`, or a file whose base cannot be compared)."""
        if not ctx.view.has_base or self.scope == "file":
            return None
        return lines_touched(ctx.view, changed)

    def _other_keys(
        self, ctx: RuleContext, production: set[str]
    ) -> tuple[set[str], dict[str, list[str]], list[Finding]]:
        """Keys other environments set at head, the files looked in per environment, and
        the files that could not be read (a key could hide there: fail closed)."""
        keys: set[str] = set()
        looked_in: dict[str, list[str]] = defaultdict(list)
        problems: list[Finding] = []
        for path in ctx.view.head_paths():
            if not self.applies_to(path) or not is_config_file(path):
                continue
            others = [e for e in ctx.environment_of(path, self) if e not in production]
            if not others:
                continue
            keyed = config_keys(ctx.view, path)
            if keyed.problem:
                problems.append(self.unreadable(path, keyed.problem, keyed.problem_line))
                continue
            for env in others:
                looked_in[env].append(path)
            keys.update(k.name for k in keyed.keys)
        return keys, looked_in, problems

    def _finding(
        self, path: str, key: ConfigKey, looked_in: dict[str, list[str]], order: list[str]
    ) -> Finding:
        names = _join(order, "or")
        files = sorted({p for env in order for p in looked_in.get(env, [])})
        if files:
            where = ", ".join(files[:MAX_NAMED])
            if len(files) > MAX_NAMED:
                where += f" and {len(files) - MAX_NAMED} more"
            looked = f"looked in {where}"
        else:
            looked = f"{names} has no configuration file at head"
        message = (
            f"{key.name} is set for production only: no file of {names} sets it ({looked}); "
            "set it in another environment too, so it runs somewhere before production"
        )
        return self.finding(path, key.line, key.name, message)


def _join(names: list[str], word: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"
