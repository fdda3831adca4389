"""Ruby: Gemfile.lock (and gems.locked) gems of GEM, GIT and plugin sources."""

from __future__ import annotations

import re

from bot.formats.dependencies.model import Dep, Ecosystem, make_dep

_GEM_SPEC = re.compile(r"^    (\S+) \(([^)\s]+)\)\s*$")


def read_gemfile_lock(text: str) -> list[Dep]:
    """Gemfile.lock `specs:` of GEM and GIT sources (PATH gems are local).

    Gems are the four-space lines `name (version[-platform])`; six-space lines are their
    own requirements and are skipped.
    """
    deps: list[Dep] = []
    section = ""
    in_specs = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line and not line[0].isspace():
            section, in_specs = line.strip(), False
            continue
        if line.strip() == "specs:":
            in_specs = section in ("GEM", "GIT", "PLUGIN SOURCE")
            continue
        match = _GEM_SPEC.match(line) if in_specs else None
        if match is None:
            continue
        version = match.group(2).split("-", 1)[0]  # `1.15.4-x86_64-linux`: platform variant
        dep = make_dep(match.group(1), version, number, Ecosystem.RUBY)
        if dep is not None:
            deps.append(dep)
    return deps
