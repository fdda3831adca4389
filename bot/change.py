"""The forge-neutral vocabulary: a change, a view of its files, findings and the verdict.

GitHub and GitLab events are turned into these at the edge (bot/forges), the CLI builds
them from git or a directory (bot/views), and rules only ever see these types.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.views.lines import lines_changed

if TYPE_CHECKING:
    from bot.formats.yamldoc import YamlFile


class Action(enum.StrEnum):
    BLOCK = "block"
    REQUIRE_APPROVAL = "require-approval"
    WARN = "warn"


class Decision(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    APPROVAL_REQUIRED = "approval_required"


class FileStatus(enum.StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"


@dataclass(frozen=True)
class ChangedFile:
    path: str
    status: FileStatus
    old_path: str | None = None  # set for renames

    @property
    def exists_at_head(self) -> bool:
        return self.status is not FileStatus.DELETED


@dataclass(frozen=True)
class Change:
    """What a pull request, merge request, push, deploy or `changegate check` is about."""

    repo: str
    base: str | None
    head: str
    forge: str = "git"  # "github" | "gitlab" | "git"; the system `author` is a name on
    author: str | None = None  # forge login/username of who made the change
    description: str = ""
    title: str = ""
    number: int | None = None  # PR/MR number, if any
    url: str | None = None
    environment: str | None = None  # the target of a deploy
    base_ref: str | None = None  # the branch a pull/merge request targets
    # what approvals bind to besides the head: "<base ref>@<merge base>", set by the governor
    basis: str | None = None
    # when this head was first shown against `basis` after another base: approvals given
    # before then were given on another diff (None: the only base this head was shown on)
    basis_since: dt.datetime | None = None
    # What `if:` / `unless:` conditions read besides `base_ref`. None means the forge did
    # not say (a push, a deploy, a local `check`): a condition needing it fails closed.
    labels: tuple[str, ...] | None = None
    draft: bool | None = None


@dataclass(frozen=True)
class Finding:
    """One problem a rule found. Sorted by `sort_key` for deterministic output."""

    path: str
    line: int | None
    rule: str
    kind: str
    action: Action
    subject: str
    message: str
    column: int | None = None
    #: on a line the change did not touch: reported at warn, apart (bot/policy/preexisting.py)
    preexisting: bool = False

    def sort_key(self) -> tuple[str, int, str, int]:
        """(path, line, rule): a whole-file finding (no line) comes first in its file; the
        sort is stable, so findings on one line keep the order they were found in."""
        return (self.path, self.line or 0, self.rule, self.column or 0)

    def __lt__(self, other: Finding) -> bool:
        return self.sort_key() < other.sort_key()

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "action": str(self.action),
            "path": self.path,
            "line": self.line,
            "subject": self.subject,
            "message": self.message,
            "preexisting": self.preexisting,
        }


@dataclass(frozen=True)
class Approval:
    """An approval given by one person on one system, bound to one head commit."""

    system: str  # "github" | "gitlab" | "slack"
    user: str  # login, username or Slack user id
    sha: str
    via: str = ""  # e.g. "review", "slack", "mr-approval"
    at: dt.datetime | None = None  # when it was given (naive UTC), where the system says
    #: the paths it vouches for, None for the whole change: an approval carried over from
    #: a pull request in a merge queue covers only what that request brought
    #: (bot/policy/carryover.py; "" stands for the change as a whole)
    covers: frozenset[str] | None = None


@dataclass(frozen=True)
class ApprovalStatus:
    rule: str
    group: str
    required: int
    granted: int
    approvers: tuple[str, ...] = ()  # who counted
    ignored: tuple[tuple[str, str], ...] = ()  # (who, why it did not count)
    # who may still approve on the change's forge (logins, @org/team slugs), for the summary
    eligible: tuple[str, ...] = ()

    @property
    def satisfied(self) -> bool:
        return self.granted >= self.required

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "group": self.group,
            "required": self.required,
            "granted": self.granted,
        }


@dataclass(frozen=True)
class ConditionOutcome:
    """How a rule's `if:` / `unless:` came out: whether the rule ran, and why."""

    rule: str
    applies: bool
    #: one line per predicate: "if target_branch ['main']: held (main)"
    checks: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "applies": self.applies, "checks": list(self.checks)}


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    findings: tuple[Finding, ...]
    approvals: tuple[ApprovalStatus, ...] = ()
    base: str | None = None
    head: str | None = None
    conditions: tuple[ConditionOutcome, ...] = ()

    @property
    def missing_approvals(self) -> tuple[ApprovalStatus, ...]:
        return tuple(a for a in self.approvals if not a.satisfied)

    def as_dict(self, *, with_range: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"decision": str(self.decision)}
        if with_range:
            out["base"] = self.base
            out["head"] = self.head
        out["findings"] = [f.as_dict() for f in self.findings]
        out["approvals"] = [a.as_dict() for a in self.approvals]
        if self.conditions:
            out["conditions"] = [c.as_dict() for c in self.conditions]
        return out


class FileView(abc.ABC):
    """A lazily read, cached view of the files of one change.

    Subclasses (git repository, directory, GitHub, GitLab) implement the four primitive
    reads; decoding and parsing are cached here so that every rule shares one per file.
    What can be read is read: undecodable bytes become U+FFFD, a large file is read in full
    up to `MAX_FILE_BYTES` (docs/reading-files.md).
    """

    #: Above this size a file is still read, with a note that it is large.
    SOFT_MAX_FILE_BYTES = 5 * 1024 * 1024
    #: Above this size a file is not read; the rules that needed it say so at their action.
    MAX_FILE_BYTES = 25 * 1024 * 1024

    def __init__(self, change: Change) -> None:
        self.change = change
        self._yaml_cache: dict[tuple[str, str], YamlFile] = {}
        self._text_cache: dict[tuple[str, str], str | None] = {}

    # -- primitives -------------------------------------------------------------
    @abc.abstractmethod
    def changed_files(self) -> list[ChangedFile]:
        """Files the change adds, modifies, renames or deletes (all files, for a scan)."""

    @abc.abstractmethod
    def read(self, path: str, rev: str = "head") -> bytes | None:
        """Contents of `path` at "head" or "base"; None when absent there."""

    @abc.abstractmethod
    def head_paths(self) -> list[str]:
        """Every file path at the head revision (whole-environment context)."""

    def prefetch(self, paths: Iterable[str]) -> None:
        """Read the head contents of `paths` ahead, together, because rules are about to
        (a forge view fetches them concurrently). A hint only: nothing is read here by
        default, and every read still goes through `read()`."""
        return None

    def shown_base(self) -> str | None:
        """The commit the change is shown against (its merge base)."""
        return self.change.base

    def unlisted(self) -> str | None:
        """Why the change could not be listed whole (the forge's cap, a listing by trees
        that ran out of budget), or None. A change not listed whole never passes."""
        return None

    @property
    def has_base(self) -> bool:
        """False for a directory scan: there is no 'before'."""
        return self.change.base is not None

    def changed_line_count(self) -> int:
        """Lines added plus lines removed over every changed text file (a binary or
        unreadable file counts as one line: it did change)."""
        total = 0
        for changed in self.changed_files():
            old_path = changed.old_path or changed.path
            before = self.text(old_path, "base") if self.has_base else None
            after = self.text(changed.path) if changed.exists_at_head else None
            if (before is None and self.has_base and self.read(old_path, "base") is not None) or (
                after is None and changed.exists_at_head
            ):
                total += 1
                continue
            total += lines_changed(before or "", after or "")
        return total

    def exists(self, path: str, rev: str = "head") -> bool:
        return self.read(path, rev) is not None

    # -- cached decoding ------------------------------------------------------------
    def text(self, path: str, rev: str = "head") -> str | None:
        """Decoded text (bad bytes as U+FFFD); None if absent, binary or over the hard cap."""
        key = (rev, path)
        if key not in self._text_cache:
            self._text_cache[key] = decode_text(self.read(path, rev), self.MAX_FILE_BYTES)
        return self._text_cache[key]

    def unreadable_reason(self, path: str, rev: str = "head") -> str | None:
        """Why `text()` returned None for an existing file: what, and how to get it read."""
        data = self.read(path, rev)
        if data is None:
            return None
        return undecodable_reason(data, self.MAX_FILE_BYTES)

    def read_note(self, path: str, rev: str = "head") -> str | None:
        """What a reader of `text()` should know (bad bytes replaced, a large file), or None."""
        data = self.read(path, rev)
        if data is None or undecodable_reason(data, self.MAX_FILE_BYTES) is not None:
            return None
        return decoding_note(data, self.SOFT_MAX_FILE_BYTES)

    def yaml(self, path: str, rev: str = "head") -> YamlFile:
        from bot.formats.yamldoc import YamlFile, load_yaml

        key = (rev, path)
        cached = self._yaml_cache.get(key)
        if cached is None:
            text = self.text(path, rev)
            if text is not None:
                cached = load_yaml(text, path=path)
            elif self.read(path, rev) is None:
                cached = YamlFile(documents=[], problem=None, missing=True)
            else:
                cached = YamlFile(
                    documents=[], problem=self.unreadable_reason(path, rev) or "unreadable"
                )
            self._yaml_cache[key] = cached
        return cached


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


#: Share of a file's first bytes that may be NUL, control or undecodable and it is still text.
BINARY_SHARE = 0.10
_SAMPLE = 8192
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\x1b")


def _looks_binary(data: bytes) -> bool:
    """Mostly not text: a stray NUL or bad byte in a manifest is not enough (it is still
    read), a PNG or a random blob named `.yaml` is."""
    sample = data[:_SAMPLE].decode("utf-8", "replace")
    if not sample:
        return False
    odd = sum(1 for c in sample if c == "\ufffd" or (c < " " and c not in _TEXT_CONTROLS))
    return odd / len(sample) > BINARY_SHARE


def _utf16(data: bytes) -> bool:
    return data.startswith((b"\xff\xfe", b"\xfe\xff"))


def undecodable_reason(data: bytes, max_bytes: int) -> str | None:
    """Why a file cannot be read as text at all, saying how to get it read; None if it can."""
    if len(data) > max_bytes:
        return (
            f"file is {len(data):,} bytes ({_mib(len(data))}), over the {_mib(max_bytes)} "
            "limit changegate reads; split it into smaller files or keep generated data out "
            "of the rule's paths"
        )
    if not _utf16(data) and _looks_binary(data):
        return (
            "binary file: most of its first bytes are not text; commit it as UTF-8 text, "
            "or keep it out of the rule's paths"
        )
    return None


def decoding_note(data: bytes, soft_max_bytes: int) -> str | None:
    """One sentence about how a readable file was read, when that is not plainly."""
    notes: list[str] = []
    if len(data) > soft_max_bytes:
        notes.append(f"file is {_mib(len(data))}, over {_mib(soft_max_bytes)}; read in full")
    if not _utf16(data):
        if b"\x00" in data:
            notes.append("it holds NUL bytes, read as U+FFFD")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            notes.append(f"not valid UTF-8 (first bad byte at offset {exc.start}), read as U+FFFD")
    return "; ".join(notes) or None


def decode_text(data: bytes | None, max_bytes: int) -> str | None:
    """The text of a file: UTF-8 (or UTF-16 with a BOM), bad bytes and NULs as U+FFFD."""
    if data is None or undecodable_reason(data, max_bytes) is not None:
        return None
    if _utf16(data):
        text = data.decode("utf-16", "replace")
    else:
        text = data.decode("utf-8", "replace").replace("\x00", "\ufffd")
    return text[1:] if text.startswith("\ufeff") else text
