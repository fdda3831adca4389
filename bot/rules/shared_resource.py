"""`shared-resource`: one datastore instance referenced by two environments.

An instance is a host and a port: a Redis database number or a Postgres database name
does not make another instance (a demo `FLUSHALL` empties every database of the server),
and the same server named by a `redis` key in one file and a `cache` key in another is
still one server. The whole head tree is read, but only the files that belong to some
environment; findings go on the references in changed files, so a change that introduces
the sharing is blamed at its own lines (a scan blames every reference).
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import Field

from bot.change import Finding
from bot.formats.endpoints import GENERIC_KINDS, Endpoint, find_endpoints
from bot.rules.base import RuleBase, RuleContext
from bot.rules.strict import StrictModel

#: How many other references a message names before "and N more".
MAX_NAMED = 3


class SharedResourceOptions(StrictModel):
    ignore_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1", "0.0.0.0"],
        description=(
            "Hosts that are never one shared instance (each environment has its own). "
            "Shell-style globs such as `*.svc.cluster.local` are allowed; loopback and "
            "unspecified IP addresses are always ignored."
        ),
    )
    ignore_short_hosts: bool = Field(
        default=False,
        description=(
            "Ignore single-label hosts (`redis`, `redis-master`): in Kubernetes and "
            "docker-compose they resolve inside each environment's own namespace or project."
        ),
    )


@dataclass(frozen=True)
class _Reference:
    endpoint: Endpoint
    environments: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.endpoint.path}:{self.endpoint.line}"


class SharedResourceRule(RuleBase):
    kind: Literal["shared-resource"] = "shared-resource"
    options: SharedResourceOptions = Field(default_factory=SharedResourceOptions)

    reads_contents = True
    judges = "references"

    def check(self, ctx: RuleContext) -> list[Finding]:
        if not ctx.environments:
            return []
        changed = {f.path for f in self.changed_files(ctx)}
        instances: dict[tuple[str, int], list[_Reference]] = defaultdict(list)
        findings: list[Finding] = []
        for path in ctx.view.head_paths():
            if not self.applies_to(path):
                continue
            envs = ctx.environment_of(path, self)
            if not envs:
                continue
            if path in changed and ctx.view.text(path) is None:
                reason = ctx.view.unreadable_reason(path)
                if reason and not reason.startswith("binary"):
                    findings.append(self.unreadable(path, reason))
                continue
            for endpoint in find_endpoints(ctx.view, path):
                if not self._ignored(endpoint.host):
                    ref = _Reference(endpoint, tuple(envs))
                    instances[(endpoint.host, endpoint.port)].append(ref)
        order = list(ctx.environments)
        for refs in instances.values():
            all_envs = {env for ref in refs for env in ref.environments}
            if len(all_envs) < 2:
                continue
            kind = _instance_kind(refs)
            seen: set[tuple[str, int]] = set()
            for ref in refs:
                at = (ref.endpoint.path, ref.endpoint.line)
                if ref.endpoint.path not in changed or at in seen:
                    continue
                seen.add(at)
                findings.append(self._finding(ref, refs, kind, order))
        return findings

    def _ignored(self, host: str) -> bool:
        if any(fnmatchcase(host, pattern.lower()) for pattern in self.options.ignore_hosts):
            return True
        if host == "localhost" or host.endswith(".localhost"):
            return True
        if self.options.ignore_short_hosts and "." not in host and ":" not in host:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return address.is_loopback or address.is_unspecified

    def _finding(
        self, ref: _Reference, refs: list[_Reference], kind: str, order: list[str]
    ) -> Finding:
        mine = set(ref.environments)
        others = [r for r in refs if not set(r.environments) <= mine]
        if not others:  # this file alone configures several environments
            others = [r for r in refs if r.endpoint.path != ref.endpoint.path]
        envs = [e for e in order if e in mine]
        envs += [e for e in order if e not in mine and any(e in r.environments for r in others)]
        named = sorted({r.where for r in others})
        where = ", ".join(named[:MAX_NAMED])
        if len(named) > MAX_NAMED:
            where += f" and {len(named) - MAX_NAMED} more"
        also = f"also in {where}" if where else f"{ref.endpoint.path} configures all of them"
        what = f"{kind} at " if kind not in GENERIC_KINDS else ""
        address = ref.endpoint.address
        message = (
            f"{_join(envs)} {'both' if len(envs) == 2 else 'all'} use {what}{address} "
            f"({also}); give each environment its own instance"
        )
        subject = address if kind in GENERIC_KINDS else f"{kind}://{address}"
        return self.finding(ref.endpoint.path, ref.endpoint.line, subject, message)


def _instance_kind(refs: list[_Reference]) -> str:
    """The kind most references name, specific kinds (`redis`) before generic (`cache`)."""
    counts = Counter(r.endpoint.kind for r in refs)
    return min(counts, key=lambda k: (k in GENERIC_KINDS, -counts[k], k))


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
