"""The policy file (version 1): pydantic models, loading with FILE:LINE:COL errors, JSON Schema.

Validation happens in two passes over one YAML read: pydantic checks shapes and values,
then cross-references (groups named by rules, duplicate ids; bot/policy/crossrefs.py). Every
error is mapped back to the composed YAML node it came from, so a user sees exactly where.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pathspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from bot.durations import parse_duration
from bot.formats import yamldoc
from bot.policy.crossrefs import cross_reference_problems
from bot.policy.freeze import BreakGlassSettings, FreezeWindow
from bot.rules.base import RuleBase, check_globs, compile_globs
from bot.rules.dependency_upgrade import DependencyMajorUpgradeRule
from bot.rules.env_drift import EnvDriftRule
from bot.rules.expression import ExpressionRule
from bot.rules.migration_playbook import MigrationPlaybookRule
from bot.rules.paths import PathsRule
from bot.rules.prod_only import ProdOnlyChangeRule
from bot.rules.shared_resource import SharedResourceRule
from bot.rules.strict import StrictModel
from bot.rules.unpinned_image import UnpinnedImageRule
from bot.rules.yaml_coercion import YamlVersionCoercionRule

Rule = Annotated[
    UnpinnedImageRule
    | YamlVersionCoercionRule
    | SharedResourceRule
    | ProdOnlyChangeRule
    | MigrationPlaybookRule
    | DependencyMajorUpgradeRule
    | PathsRule
    | EnvDriftRule
    | ExpressionRule,
    Field(discriminator="kind"),
]

RULE_KINDS: tuple[type[RuleBase], ...] = (
    UnpinnedImageRule,
    YamlVersionCoercionRule,
    SharedResourceRule,
    ProdOnlyChangeRule,
    MigrationPlaybookRule,
    DependencyMajorUpgradeRule,
    PathsRule,
    EnvDriftRule,
    ExpressionRule,
)


class Environment(StrictModel):
    paths: list[str] = Field(min_length=1, description="gitignore-style globs of its files.")

    @field_validator("paths")
    @classmethod
    def _valid_globs(cls, value: list[str]) -> list[str]:
        return check_globs(value)


class Group(StrictModel):
    github: list[str] = Field(default_factory=list, description="Logins, or @org/team slugs.")
    gitlab: list[str] = Field(default_factory=list, description="Usernames.")
    slack: list[str] = Field(default_factory=list, description="User ids, or user-group ids.")
    slack_channel: str | None = Field(
        default=None, description="Channel for approval requests that name this group."
    )

    def members(self, system: str) -> list[str]:
        return list(getattr(self, system, []))


class Person(StrictModel):
    """One human across systems, so an approval on GitHub and one in Slack are one person."""

    name: str | None = None
    github: str | None = None
    gitlab: str | None = None
    slack: str | None = None
    email: str | None = None

    def identities(self) -> list[tuple[str, str]]:
        return [
            (system, value.lower())
            for system in ("github", "gitlab", "slack", "email")
            if (value := getattr(self, system))
        ]


class DeployGate(StrictModel):
    approvers: str = Field(description="Group whose members approve deploys here.")
    min_approvals: int = Field(default=1, ge=1)
    slack_channel: str | None = None
    expires_after: str = Field(default="4h", description="How long a request stays open.")
    freeze: list[FreezeWindow] = Field(
        default_factory=list,
        description="Windows (weekly, or dated periods) in which deploys are rejected "
        "unless someone breaks glass.",
    )

    @field_validator("expires_after")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def expires_after_delta(self) -> dt.timedelta:
        return parse_duration(self.expires_after)


class Deploys(BaseModel):
    """`deploys:`: a gate per environment, and `default`, what a deploy to an environment
    without a gate gets. Names match case-insensitively (GitHub's `Production` is the
    policy's `production`), and a deploy with no gate is held unless the admin opts in
    with `default: allow`: a gate that fails open is no gate."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, DeployGate] = Field(init=False)

    default: Literal["hold", "allow"] = Field(
        default="hold",
        description="For environments without a gate: `hold` (rejected on GitHub, not "
        "played on GitLab, and audited as `deploy.held`) or `allow` (let through; only "
        "the admin policy can say so). `default` is therefore not an environment name.",
    )

    @property
    def gates(self) -> dict[str, DeployGate]:
        return dict(self.__pydantic_extra__ or {})

    def items(self) -> list[tuple[str, DeployGate]]:
        return list(self.gates.items())

    def name_of(self, environment: str) -> str | None:
        """The policy's spelling of `environment`, matched case-insensitively."""
        gates = self.gates
        if environment in gates:
            return environment
        wanted = environment.casefold()
        return next((name for name in gates if name.casefold() == wanted), None)

    def get(self, environment: str) -> DeployGate | None:
        name = self.name_of(environment)
        return self.gates[name] if name is not None else None

    def __getitem__(self, environment: str) -> DeployGate:
        gate = self.get(environment)
        if gate is None:
            raise KeyError(environment)
        return gate


class Policy(StrictModel):
    """A changegate policy file, version 1."""

    version: Literal[1]
    environments: dict[str, Environment] = Field(default_factory=dict)
    groups: dict[str, Group] = Field(default_factory=dict)
    people: list[Person] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    deploys: Deploys = Field(default_factory=Deploys)
    break_glass: BreakGlassSettings = Field(
        default_factory=BreakGlassSettings,
        description="Who may override a gate or a require-approval verdict in an emergency.",
    )

    #: environments a repository's `.changegate.yml` added (`bot.policy.merge`): they
    #: classify only paths that none of the admin's environments match
    _repository_environments: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @property
    def repository_environments(self) -> frozenset[str]:
        return self._repository_environments

    @cached_property
    def environment_specs(self) -> dict[str, pathspec.PathSpec]:
        return {name: compile_globs(env.paths) for name, env in self.environments.items()}

    def rule(self, rule_id: str) -> RuleBase | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PolicyError(Exception):
    """A policy that could not be loaded; str() is one `FILE:LINE:COL: message` per line."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_policy_file(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([PolicyProblem(str(path), 1, 1, f"cannot read policy: {exc}")]) from exc
    return load_policy_text(text, str(path))


def load_policy_text(
    text: str, filename: str = "<policy>", *, known_groups: frozenset[str] = frozenset()
) -> Policy:
    """Parse and validate a policy; raise PolicyError naming the file, line and column.

    `known_groups` are groups defined elsewhere (the admin policy, for a repository's
    `.changegate.yml`) that rules may name.
    """
    parsed = yamldoc.load_yaml(text)
    if parsed.problem:
        raise PolicyError([PolicyProblem(filename, parsed.problem_line or 1, 1, parsed.problem)])
    if len(parsed.documents) != 1:
        raise PolicyError(
            [PolicyProblem(filename, 1, 1, "a policy file holds exactly one YAML document")]
        )
    root = parsed.documents[0]
    locate = _Locator(filename, root, text)
    problems = _duplicate_keys(root, locate)
    if not isinstance(root, yamldoc.MappingNode):
        problems.append(locate.at(root, "a policy file is a mapping with `version: 1` at the top"))
        raise PolicyError(problems)
    data = yaml.load(text, Loader=yamldoc._Loader)  # small and bomb-checked above
    problems.extend(
        locate.loc(where, message)
        for where, message in cross_reference_problems(data, known_groups)
    )
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems.extend(locate.pydantic_error(err) for err in exc.errors())
        raise PolicyError(sorted(problems, key=lambda p: (p.line, p.column))) from None
    if problems:
        raise PolicyError(sorted(problems, key=lambda p: (p.line, p.column)))
    return policy


def _duplicate_keys(root: yamldoc.Node, locate: _Locator) -> list[PolicyProblem]:
    problems = []
    for _path, node in yamldoc.walk(root):
        seen: set[str] = set()
        for name, key_node, _value in yamldoc.items(node):
            if name in seen:
                problems.append(locate.at(key_node, f"duplicate key {name!r}"))
            seen.add(name)
    return problems


class _Locator:
    """Maps a pydantic error location back to the YAML node it came from."""

    def __init__(self, filename: str, root: yamldoc.Node, text: str = "") -> None:
        self.filename = filename
        self.root = root
        self.text = text

    def at(self, node: yamldoc.Node, message: str) -> PolicyProblem:
        return PolicyProblem(self.filename, yamldoc.line_of(node), yamldoc.column_of(node), message)

    def find(self, loc: tuple[Any, ...]) -> tuple[yamldoc.Node, yamldoc.Node | None]:
        """(deepest node reached, key node of the last mapping step)."""
        node, key_node = self.root, None
        for index, part in enumerate(loc):
            if _is_union_tag(loc, index):
                continue
            if isinstance(node, yamldoc.MappingNode) and isinstance(part, str):
                hit = next(((k, v) for name, k, v in yamldoc.items(node) if name == part), None)
                if hit is None:
                    continue  # a discriminator tag or a model name: not in the YAML
                key_node, node = hit
            elif (
                isinstance(node, yamldoc.SequenceNode)
                and isinstance(part, int)
                and part < len(node.value)
            ):
                node, key_node = node.value[part], None
            # anything else names a union member, not a place in the file
        return node, key_node

    def loc(self, loc: tuple[Any, ...], message: str) -> PolicyProblem:
        node, _ = self.find(loc)
        return self.at(node, message)

    def pydantic_error(self, err: Any) -> PolicyProblem:
        loc = tuple(err["loc"])
        kind = err["type"]
        node, key_node = self.find(loc)
        where = ".".join(str(p) for i, p in enumerate(loc) if not _is_union_tag(loc, i))
        if kind == "extra_forbidden":
            hint = did_you_mean(str(loc[-1]), _keys_at(loc[:-1]))
            return self.at(key_node or node, f"unknown key {loc[-1]!r} in {_parent(where)}{hint}")
        if kind == "missing":
            return self.at(node, f"missing key {loc[-1]!r} in {_parent(where)}")
        if kind == "union_tag_invalid":
            kind_node = yamldoc.get(node, "kind") or node
            expected = ", ".join(r.kind_name() for r in RULE_KINDS)
            found = yamldoc.scalar(kind_node)
            hint = did_you_mean(found or "", [r.kind_name() for r in RULE_KINDS])
            return self.at(kind_node, f"unknown rule kind {found!r}{hint} (one of: {expected})")
        if kind == "union_tag_not_found":
            return self.at(node, "a rule needs a `kind`")
        message = str(err["msg"]).removeprefix("Value error, ")
        offset = (err.get("ctx") or {}).get("offset")
        if offset is not None and isinstance(node, yamldoc.ScalarNode):
            # an error inside the value (a CEL expression): point at the character
            line, column = yamldoc.position_in_scalar(node, self.text, offset)
            return PolicyProblem(self.filename, line, column, f"{where}: {message}")
        return self.at(node, f"{where}: {message}" if where else message)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'options'?` for a near miss (difflib), else nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the policy model allows at `loc` (a pydantic error location)."""
    current: Any = Policy
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = _field_named(current, part) if isinstance(part, str) else None
            if field is None:
                return []
            current = field.annotation
        elif get_origin(current) is list and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict and isinstance(part, str):
            current = get_args(current)[1]
        elif get_origin(current) in (Union, UnionType):
            members = [m for m in get_args(current) if _is_rule_kind(m, part)]
            if not members:
                return []
            current = members[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _field_named(model: type[BaseModel], key: str) -> Any:
    """The field a YAML key fills: its alias (`if`) or its name."""
    return next(
        (f for name, f in model.model_fields.items() if (f.alias or name) == key),
        None,
    )


def _unwrap(annotation: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` are X."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType) and type(None) in get_args(annotation):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            annotation = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        else:
            return annotation


def _is_rule_kind(member: Any, tag: Any) -> bool:
    return isinstance(member, type) and issubclass(member, RuleBase) and member.kind_name() == tag


def _is_union_tag(loc: tuple[Any, ...], index: int) -> bool:
    """Whether loc[index] names the rule kind pydantic chose (rules.3.paths.options...),
    not a key of the file (`paths` is both a kind and a key)."""
    part = loc[index]
    return (
        index >= 2
        and loc[index - 2] == "rules"
        and isinstance(loc[index - 1], int)
        and isinstance(part, str)
        and any(part == r.kind_name() for r in RULE_KINDS)
    )


def _parent(where: str) -> str:
    parent = where.rpartition(".")[0]
    return parent or "the policy"


def policy_json_schema() -> dict[str, Any]:
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "changegate policy (version 1)"
    return schema
