"""`if:` / `unless:` on every rule: the predicates policy-bot users rely on.

A rule runs when every predicate of its `if:` holds and not every predicate of its
`unless:` does. A predicate that needs a fact the forge did not supply (labels of a push,
the target branch of a local `check`) fails closed: it is taken to come out the way that
makes the rule run, and the verdict says so. Patterns are RE2 (linear time): a policy
regex can never stall the bot on a crafted title.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import re2
from pydantic import Field, field_validator, model_validator

from bot.rules.linear_regex import compile_regex
from bot.rules.strict import StrictModel

UNKNOWN = None  # a predicate's outcome when the fact is missing
#: (predicate as written, outcome or UNKNOWN, what was seen)
Checked = tuple[str, bool | None, str]


def compile_linear(pattern: str) -> Any:
    """An RE2 pattern (bot.rules.linear_regex): matching is linear in the input."""
    return compile_regex(pattern)


def branch_glob(pattern: str) -> Any:
    """A branch glob: `*` any run of characters (slashes too), `?` one character."""
    if not pattern.strip():
        raise ValueError("an empty branch glob matches nothing")
    parts = ["^"]
    for char in pattern:
        parts.append(".*" if char == "*" else "." if char == "?" else re2.escape(char))
    parts.append("$")
    return compile_linear("".join(parts))


class Count(StrictModel):
    min: int | None = Field(default=None, ge=0, description="At least this many.")
    max: int | None = Field(default=None, ge=0, description="At most this many.")

    @model_validator(mode="after")
    def _some_bound(self) -> Count:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def holds(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def __str__(self) -> str:
        return " ".join(
            f"{k} {v}" for k, v in (("min", self.min), ("max", self.max)) if v is not None
        )


class Condition(StrictModel):
    """Predicates about the change; all of them must hold for the condition to hold."""

    target_branch: list[str] | None = Field(
        default=None, description="The change targets one of these branches (globs: release/*)."
    )
    author_in: str | None = Field(default=None, description="The author is a member of this group.")
    author_not_in: str | None = Field(
        default=None, description="The author is not a member of this group."
    )
    labels_any: list[str] | None = Field(
        default=None, description="The change carries at least one of these labels."
    )
    labels_all: list[str] | None = Field(
        default=None, description="The change carries all of these labels."
    )
    title_matches: str | None = Field(
        default=None, description="RE2 pattern searched in the title."
    )
    description_matches: str | None = Field(
        default=None, description="RE2 pattern searched in the description."
    )
    changed_files: Count | None = Field(default=None, description="Number of changed files.")
    changed_lines: Count | None = Field(
        default=None, description="Lines added plus removed over all changed text files."
    )
    environments: list[str] | None = Field(
        default=None, description="The change touches a file of one of these environments."
    )
    draft: bool | None = Field(default=None, description="The change is (true) or is not a draft.")

    @field_validator("target_branch")
    @classmethod
    def _valid_branches(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or []:
            branch_glob(pattern)
        return value

    @field_validator("title_matches", "description_matches")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            compile_linear(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("an empty condition: name at least one predicate")
        return self

    @cached_property
    def _title(self) -> Any:
        return compile_linear(self.title_matches or "")

    @cached_property
    def _description(self) -> Any:
        return compile_linear(self.description_matches or "")

    @cached_property
    def _branches(self) -> list[Any]:
        return [branch_glob(p) for p in self.target_branch or []]

    def groups(self) -> list[tuple[str, str]]:
        """(field, group) pairs, for cross-reference checks."""
        return [(k, v) for k in ("author_in", "author_not_in") if (v := getattr(self, k))]

    def check(self, facts: ChangeFacts) -> list[Checked]:
        """(predicate, outcome or UNKNOWN, what was seen) for each predicate set."""
        return [
            *self._check_branch(facts),
            *self._check_author(facts),
            *self._check_labels(facts),
            *self._check_patterns(facts),
            *self._check_sizes(facts),
            *self._check_environments(facts),
            *self._check_draft(facts),
        ]

    def _check_branch(self, facts: ChangeFacts) -> list[Checked]:
        if self.target_branch is None:
            return []
        branch = facts.target_branch
        seen = branch if branch is not None else "target branch unknown"
        ok = None if branch is None else any(g.search(branch) for g in self._branches)
        return [(f"target_branch {self.target_branch}", ok, seen)]

    def _check_author(self, facts: ChangeFacts) -> list[Checked]:
        out: list[Checked] = []
        for name, wanted in (("author_in", True), ("author_not_in", False)):
            group = getattr(self, name)
            if group is None:
                continue
            member = facts.member_of(group) if facts.author else None
            ok = None if member is None else member is wanted
            seen = facts.author or "author unknown"
            if member is None and facts.author:
                seen += f" (membership of {group} unknown)"
            out.append((f"{name} {group}", ok, seen))
        return out

    def _check_labels(self, facts: ChangeFacts) -> list[Checked]:
        out: list[Checked] = []
        labels = facts.labels
        if labels:
            seen = ", ".join(labels)
        else:
            seen = "no labels" if labels is not None else "labels unknown"
        if self.labels_any is not None:
            ok = None if labels is None else bool(set(self.labels_any) & set(labels))
            out.append((f"labels_any {self.labels_any}", ok, seen))
        if self.labels_all is not None:
            ok = None if labels is None else set(self.labels_all) <= set(labels)
            out.append((f"labels_all {self.labels_all}", ok, seen))
        return out

    def _check_patterns(self, facts: ChangeFacts) -> list[Checked]:
        out: list[Checked] = []
        if self.title_matches is not None:
            title_ok = bool(self._title.search(facts.title))
            out.append((f"title_matches {self.title_matches!r}", title_ok, repr(facts.title[:80])))
        if self.description_matches is not None:
            found = bool(self._description.search(facts.description))
            seen = "found" if found else "not found"
            out.append((f"description_matches {self.description_matches!r}", found, seen))
        return out

    def _check_sizes(self, facts: ChangeFacts) -> list[Checked]:
        out: list[Checked] = []
        if self.changed_files is not None:
            n = facts.changed_files
            out.append(
                (f"changed_files {self.changed_files}", self.changed_files.holds(n), f"{n} files")
            )
        if self.changed_lines is not None:
            n = facts.changed_lines
            out.append(
                (f"changed_lines {self.changed_lines}", self.changed_lines.holds(n), f"{n} lines")
            )
        return out

    def _check_environments(self, facts: ChangeFacts) -> list[Checked]:
        if self.environments is None:
            return []
        touched = facts.environments
        ok = bool(set(self.environments) & touched)
        return [(f"environments {self.environments}", ok, ", ".join(sorted(touched)) or "none")]

    def _check_draft(self, facts: ChangeFacts) -> list[Checked]:
        if self.draft is None:
            return []
        draft = facts.draft
        ok = None if draft is None else draft is self.draft
        seen = "draft unknown" if draft is None else ("draft" if draft else "not a draft")
        return [(f"draft {str(self.draft).lower()}", ok, seen)]


@dataclass
class ChangeFacts:
    """What conditions read, computed once per evaluation and only when asked for."""

    title: str
    description: str
    author: str | None
    target_branch: str | None
    labels: tuple[str, ...] | None
    draft: bool | None
    count_files: Callable[[], int]
    count_lines: Callable[[], int]
    #: the environments the changed files belong to, as an admin rule (False) or a
    #: repository's own rule (True) sees them
    touched_environments: Callable[[bool], set[str]]
    #: True / False, or None when membership cannot be known (no forge identity)
    member_of: Callable[[str], bool | None]
    _cache: dict[str, Any] = field(default_factory=dict)
    repository_rule: bool = False

    def for_rule(self, from_repository: bool) -> ChangeFacts:
        """The same facts (and cache), seen by an admin rule or a repository's rule."""
        return dataclasses.replace(self, repository_rule=from_repository)

    def _once(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def changed_files(self) -> int:
        return int(self._once("files", self.count_files))

    @property
    def changed_lines(self) -> int:
        return int(self._once("lines", self.count_lines))

    @property
    def environments(self) -> set[str]:
        flag = self.repository_rule
        return set(self._once(f"envs:{flag}", lambda: self.touched_environments(flag)))


def outcome(
    if_: Condition | None, unless: Condition | None, facts: ChangeFacts
) -> tuple[bool, tuple[str, ...]]:
    """(does the rule run, one line per predicate saying what held)."""
    lines: list[str] = []
    runs = True
    if if_ is not None:
        for name, ok, seen in if_.check(facts):
            # unknown fails closed: the `if:` predicate is taken to hold
            lines.append(f"if {name}: {_word(ok, 'taken to hold')} ({seen})")
            runs = runs and ok is not False
    if unless is not None:
        checks = unless.check(facts)
        for name, ok, seen in checks:
            lines.append(f"unless {name}: {_word(ok, 'taken not to hold')} ({seen})")
        # unknown fails closed: the `unless:` predicate is taken not to hold
        if checks and all(ok is True for _, ok, _ in checks):
            runs = False
    return runs, tuple(lines)


def _word(ok: bool | None, unknown: str) -> str:
    if ok is None:
        return f"unknown, {unknown} (fail closed)"
    return "held" if ok else "did not hold"
