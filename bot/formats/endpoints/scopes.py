"""Endpoints among sibling keys (a scope): hosts and URLs under datastore-ish names, with
the port and engine their siblings give; collected per file without duplicates."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from bot.formats.endpoints.addresses import (
    AUTHORITY_RE,
    SCHEME_RE,
    authority_hosts,
    parse_hostport,
    parse_url,
    scheme_kind,
)
from bot.formats.endpoints.kinds import (
    DEFAULT_PORTS,
    ENGINE_ROLES,
    GENERIC_KINDS,
    HOST_ROLES,
    PORT_ROLES,
    URL_ROLES,
    WELL_KNOWN_PORTS,
    WORD_KINDS,
    kind_from_words,
    kind_in_value,
)


@dataclass(frozen=True, order=True)
class Endpoint:
    """One reference to a datastore instance at a line of a file."""

    path: str
    line: int
    kind: str  # "redis" | "postgres" | "mysql" | ... | "database" / "cache" when unknown
    host: str  # lowercased; IPv6 without brackets
    port: int
    raw: str  # the source line, stripped

    @property
    def address(self) -> str:
        """`host:port`, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class Collector:
    """Endpoints of one file, deduplicated by (line, host, port), specific kinds winning."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self._found: dict[tuple[int, str, int], Endpoint] = {}

    def add(self, line: int, kind: str, host: str, port: int) -> None:
        key = (line, host, port)
        known = self._found.get(key)
        if known is not None and (known.kind not in GENERIC_KINDS or kind in GENERIC_KINDS):
            return
        raw = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        self._found[key] = Endpoint(self.path, line, kind, host, port, raw[:200])

    def urls(self) -> None:
        """Datastore URLs anywhere in the text, except on comment lines."""
        for number, line in enumerate(self.lines, start=1):
            if "://" not in line or is_comment(line):
                continue
            for match in SCHEME_RE.finditer(line):
                kind_port = scheme_kind(match.group(1).lower())
                if kind_port is None:
                    continue
                authority = AUTHORITY_RE.match(line, match.end())
                text = authority.group(0) if authority else ""
                for kind, host, port in authority_hosts(text, *kind_port):
                    self.add(number, kind, host, port)

    def result(self) -> list[Endpoint]:
        return sorted(self._found.values())


def is_comment(line: str) -> bool:
    return line.lstrip().startswith(("#", "//", ";", "--"))


@dataclass
class Entry:
    key: str
    words: tuple[str, ...]
    value: str
    line: int

    @property
    def role(self) -> str:
        return self.words[-1] if self.words else ""

    @property
    def stem(self) -> tuple[str, ...]:
        return tuple(self.words[:-1])


def read_scope(out: Collector, entries: list[Entry], context: list[str]) -> None:
    """Endpoints among sibling keys; `context` holds enclosing key words, nearest first."""
    ports: dict[tuple[str, ...], list[tuple[int, int]]] = {}
    engines: dict[tuple[str, ...], str] = {}
    for entry in entries:
        if entry.role in PORT_ROLES:
            value = entry.value.strip()
            if value.isdigit() and 0 < int(value) < 65536:
                ports.setdefault(entry.stem, []).append((entry.line, int(value)))
        elif entry.role in ENGINE_ROLES:
            engine = kind_in_value(entry.value)
            if engine:
                engines.setdefault(entry.stem, engine)
    for found in ports.values():
        found.sort()
    for entry in entries:
        role = entry.role
        if role in HOST_ROLES or role in URL_ROLES:
            stem = entry.stem
            kind = kind_from_words([*reversed(stem), *context])
            engine = engines.get(stem)
            if engine and (kind is None or kind in GENERIC_KINDS):
                kind = engine
            if kind is None:
                continue
            sentinel = "sentinel" in stem or "sentinel" in context[:3]
            port = _nearest_port(ports.get(stem, []), entry.line)
            _host_value(out, entry, kind, port, need_port=role in URL_ROLES, sentinel=sentinel)
        elif WORD_KINDS.get(role) is not None:
            # `redis: cache.internal:6379`, `REDIS=...`: a bare value needs a port.
            kind = kind_from_words([role, *reversed(entry.stem), *context])
            if kind is not None:
                _host_value(out, entry, kind, None, need_port=True, sentinel=False)


def _nearest_port(candidates: list[tuple[int, int]], line: int) -> int | None:
    """The port of the `(line, port)` (sorted by line) written nearest to `line`."""
    if not candidates:
        return None
    at = bisect.bisect_left(candidates, (line, 0))
    near = candidates[max(0, at - 1) : at + 1]
    return min(near, key=lambda c: abs(c[0] - line))[1]


def _host_value(
    out: Collector, entry: Entry, kind: str, port: int | None, *, need_port: bool, sentinel: bool
) -> None:
    """One host-ish value: a URL, `host`, `host:port`, or a comma-separated list of them."""
    value = entry.value.strip().strip("\"'")
    if not value or any(mark in value for mark in ("{{", "${", "$(", "%(", "<%")):
        return
    if "://" in value:
        for url_kind, host, url_port in parse_url(value, web_kind=kind) or []:
            final = url_kind if url_kind not in GENERIC_KINDS else _refine(url_kind, url_port)
            out.add(entry.line, final, host, url_port)
        return
    for part in re.split(r"[,\s]+", value):
        if not part:
            continue
        parsed = parse_hostport(part, need_port=need_port)
        if parsed is None:
            continue
        host, written = parsed
        final_port = written or port
        if final_port is None:
            final_port = 26379 if sentinel and kind == "redis" else DEFAULT_PORTS.get(kind)
        if final_port is None:
            continue  # "database" at some host, port unknown: not an instance we can name
        out.add(entry.line, _refine(kind, final_port), host, final_port)


def _refine(kind: str, port: int) -> str:
    return WELL_KNOWN_PORTS.get(port, kind) if kind in GENERIC_KINDS else kind
