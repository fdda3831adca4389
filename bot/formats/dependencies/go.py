"""Go: go.mod `require` lines; module paths lose their major-version suffix."""

from __future__ import annotations

import re

from bot.formats.dependencies.model import Dep, Ecosystem, make_dep


def go_module_name(path: str) -> str:
    """The module without its major-version suffix: `/v2` paths and gopkg.in's `.v3`."""
    if path.startswith("gopkg.in/"):
        return re.sub(r"\.v\d+$", "", path)
    return re.sub(r"/v(?:[2-9]|[1-9]\d+)$", "", path)


def read_go_mod(text: str) -> list[Dep]:
    """`require` lines and blocks; `replace` and `exclude` are not read."""
    deps: list[Dep] = []
    in_block = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line.startswith(")"):
                in_block = False
                continue
            fields = line.split()
        elif re.match(r"require\s*\($", line):
            in_block = True
            continue
        elif line.startswith("require ") or line.startswith("require\t"):
            fields = line.split()[1:]
        else:
            continue
        if len(fields) != 2:
            continue
        module = fields[0].strip('"`')
        dep = make_dep(go_module_name(module), fields[1], number, Ecosystem.GO)
        if dep is not None:
            deps.append(dep)
    return deps
