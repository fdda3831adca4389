"""Datastore URLs and `host[:port]` values: which hosts and ports they name."""

from __future__ import annotations

import ipaddress
import re

from bot.formats.endpoints.kinds import NOT_HOSTS, SCHEMES, WEB_SCHEMES
from bot.formats.helm import PLACEHOLDER_RE as HELM_PLACEHOLDER_RE

SCHEME_RE = re.compile(r"(?<![\w+.-])([A-Za-z][A-Za-z0-9+.-]*)://")
#: The authority after `scheme://`: up to a path, query, fragment, quote or space; Helm
#: `{{ ... }}` may contain spaces and is kept whole so that it can be recognised.
AUTHORITY_RE = re.compile(r"(?:\{\{[^{}\n]{0,200}\}\}|[^\s/?#\"'`<>;\\|])*")
_HOSTNAME_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")
_HOSTPORT_RE = re.compile(
    r"(?:\[(?P<v6>[0-9a-fA-F:.]+(?:%[\w.-]+)?)\]|(?P<host>[A-Za-z0-9_.-]+))(?::(?P<port>\d{1,5}))?"
)
TEMPLATE_MARKS = ("{", "}", "$", "%", "<", ">", "*", "(", ")")
#: What a Helm template action reads as (bot/formats/helm.py), host names lower-cased.
_HELM_ACTION_RE = re.compile(HELM_PLACEHOLDER_RE.pattern, re.I)


def parse_url(url: str, *, web_kind: str | None = None) -> list[tuple[str, str, int]] | None:
    """(kind, host, port) of each host of a datastore URL; None if it is not one.

    `web_kind` accepts http(s) URLs as that kind (for `ELASTICSEARCH_URL=https://...`).
    """
    match = SCHEME_RE.search(url)
    if match is None:
        return None
    scheme = match.group(1).lower()
    kind_port = scheme_kind(scheme)
    if kind_port is None:
        if web_kind is None or scheme not in WEB_SCHEMES:
            return None
        kind_port = (web_kind, WEB_SCHEMES[scheme])
    authority = AUTHORITY_RE.match(url, match.end())
    return authority_hosts(authority.group(0) if authority else "", *kind_port)


def parse_hostport(value: str, *, need_port: bool) -> tuple[str, int | None] | None:
    """`host`, `host:port` or `[v6]:port` as (lowercased host, port or None)."""
    value = value.strip()
    if _HELM_ACTION_RE.search(value):
        return None  # a Helm template action: whatever it renders is not known here
    if value.count(":") > 1 and "[" not in value:
        # a bare IPv6 address (`fd00::5`) cannot carry a port
        return None if need_port else _bare_ipv6(value)
    match = _HOSTPORT_RE.fullmatch(value)
    if match is None:
        return None
    port_text = match.group("port")
    if need_port and port_text is None:
        return None
    port = int(port_text) if port_text is not None else None
    if port is not None and not 0 < port < 65536:
        return None
    if match.group("v6") is not None:
        v6 = _bare_ipv6(match.group("v6"))
        return (v6[0], port) if v6 else None
    host = _clean_host(match.group("host"))
    return (host, port) if host is not None else None


def scheme_kind(scheme: str) -> tuple[str, int] | None:
    return SCHEMES.get(scheme) or SCHEMES.get(scheme.split("+", 1)[0])


def authority_hosts(authority: str, kind: str, default_port: int) -> list[tuple[str, str, int]]:
    """Hosts of `[user[:password]@]host[:port][,host[:port]...]`; templated ones dropped."""
    hostinfo = authority.rsplit("@", 1)[-1]
    out = []
    for part in hostinfo.split(","):
        part = part.rstrip(").}")
        if part.endswith("]") and part.count("[") < part.count("]"):
            part = part[:-1]
        if not part or any(mark in part for mark in TEMPLATE_MARKS):
            continue
        parsed = parse_hostport(part, need_port=False)
        if parsed is not None:
            out.append((kind, parsed[0], parsed[1] or default_port))
    return out


def _bare_ipv6(value: str) -> tuple[str, int | None] | None:
    try:
        return str(ipaddress.IPv6Address(value.lower())).lower(), None
    except ValueError:
        return None


def _clean_host(host: str) -> str | None:
    host = host.lower().rstrip(".")
    if not host or host in NOT_HOSTS or host.isdigit() or ".." in host:
        return None
    return host if _HOSTNAME_RE.fullmatch(host) else None
