"""`expression`: a rule written in CEL over the fact model of bot/rules/facts.py.

    - id: release-images
      kind: expression
      action: block
      over: images
      match: image.environment == 'production' && (image.digest == '' || image.registry != 'registry.example.com')
      message: "{image.reference} in {image.file}: production images come from the release registry, by digest"

The expression runs once per fact of the `over` collection, bound to its singular name
(`file`, `image`, `endpoint`, `dependency`); `change` and every collection are readable too.
Each fact it returns `true` for is a finding at the fact's file and line.

CEL is run by `common-expression-language` (Rust; bench/cel.py and the README say why).
Expressions compile when the policy loads, and are tried there on a sample fact of every
kind, so that a syntax error, an unknown name or field, or a result that is not a bool is a
`FILE:LINE:COL` policy error rather than a surprise on the first pull request.

Bounds (neither CEL library for Python has a cost limit or a timeout): an expression is at
most `MAX_SOURCE` characters; a comprehension macro (`all`, `exists`, `exists_one`, `map`,
`filter`) may not sit inside another, nor run over another's result, so one evaluation
costs at most the size of the facts times the expression's length; a collection over
`MAX_FACTS` is judged on its first `MAX_FACTS`; the rule stops after `BUDGET_SECONDS`, and
reports at most `MAX_MATCHES` findings. Whatever stops evaluation early, or makes it fail, is
a finding at the rule's action: an expression never passes by failing (fail closed).
"""

from __future__ import annotations

import importlib
import re
import time
from dataclasses import dataclass
from functools import cache, cached_property
from types import ModuleType
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from bot.change import Finding
from bot.rules.base import UNREADABLE, WHOLE_FILE, RuleBase, RuleContext
from bot.rules.facts import COLLECTIONS, FIELDS, FactSource, change_fact, specimen

MAX_SOURCE = 2000
MAX_FACTS = 5000
MAX_MATCHES = 200
BUDGET_SECONDS = 2.0
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})

_TEMPLATE_RE = re.compile(r"\{([A-Za-z_]\w*)\.([A-Za-z_]\w*)\}")
_POSITION_RE = re.compile(r"<input>:(\d+):(\d+): (.*)")
_TOKEN_RE = re.compile(
    r"""(?P<string>[rR]?(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))"""
    r"|(?P<name>[A-Za-z_]\w*)|(?P<punct>[()\[\].])|(?P<other>\S)",
    re.DOTALL,
)


@cache
def _cel() -> ModuleType:
    """The CEL engine, imported on first use: importing it costs ~0.1 s (its own command
    line's libraries), which a policy without expression rules should not pay."""
    return importlib.import_module("cel")


class ExpressionError(ValueError):
    """A CEL expression that cannot be used; `offset` is where, in the expression."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Compiled:
    program: Any  # cel.Program
    names: frozenset[str]  # the facts it reads: `change`, collections, the matched name


def compile_expression(source: str, over: str) -> Compiled:
    """Compile `source` for `over`, or raise ExpressionError saying what and where."""
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"an expression is at most {MAX_SOURCE} characters", MAX_SOURCE)
    try:
        program = _cel().compile(source)
    except ValueError as exc:
        raise _syntax_error(source, str(exc)) from None
    bound = check_macros(source)
    check_fields(source, bound)
    known = {"change", *COLLECTIONS, COLLECTIONS[over]}
    for name in program.variables():
        if name not in known and name not in bound:
            raise ExpressionError(
                f"unknown name `{name}`: an expression over {over} reads "
                f"{', '.join(sorted(known))}",
                _first_name(source, name),
            )
    compiled = Compiled(program, frozenset(program.variables()) & known)
    _try_on_specimens(compiled, source, over)
    return compiled


def check_macros(source: str) -> dict[str, str | None]:
    """The names macros bind, each with the kind of fact it ranges over (`image` for
    `images.all(i, ...)`, None for a list of strings); ExpressionError for a macro inside
    another or over another's result (what would make one evaluation cost more than
    facts x expression length)."""
    stack: list[bool] = []  # open brackets: True for a macro call's parenthesis
    holds_macro: list[bool] = []  # per open bracket: a macro was called inside it
    bound: dict[str, str | None] = {}
    seen: list[str] = []  # tokens so far
    closed_macro = False  # the last bracket closed held (or was) a macro call
    tokens = [t for t in _TOKEN_RE.finditer(source) if t.lastgroup != "string"]
    for index, token in enumerate(tokens):
        text = token.group()
        if text in ("(", "["):
            macro = text == "(" and seen[-2:-1] == ["."] and bool(seen) and seen[-1] in MACROS
            if macro:
                _check_macro_at(seen, token.start(), any(stack), closed_macro)
                variable = tokens[index + 1].group() if index + 1 < len(tokens) else ""
                bound[variable] = COLLECTIONS.get(seen[-3] if len(seen) >= 3 else "")
                if holds_macro:
                    holds_macro[-1] = True
            stack.append(macro)
            holds_macro.append(macro)
        elif text in (")", "]") and stack:
            closed_macro = stack.pop() | holds_macro.pop()
            if closed_macro and holds_macro:
                holds_macro[-1] = True
        elif text != ".":
            closed_macro = False
        seen.append(text)
    return bound


def _check_macro_at(seen: list[str], at: int, inside: bool, after_macro: bool) -> None:
    name = seen[-1]
    if inside:
        raise ExpressionError(f"`{name}` inside another macro: nest at most one level", at)
    receiver = seen[-3] if len(seen) >= 3 else ""
    if receiver == ")" or (receiver == "]" and after_macro):
        raise ExpressionError(
            f"`{name}` over the result of another macro or call: run it over a fact "
            "(`images`, `change.files`) instead",
            at,
        )


def check_fields(source: str, bound: dict[str, str | None]) -> None:
    """`image.tga`: a field no fact has, even on a branch the sample run skipped."""
    tokens = [t for t in _TOKEN_RE.finditer(source) if t.lastgroup != "string"]
    for index in range(len(tokens) - 2):
        holder, dot, field = tokens[index : index + 3]
        if dot.group() != "." or field.lastgroup != "name":
            continue
        if index and tokens[index - 1].group() == ".":
            continue  # `a.b.c`: only the first step is checked
        name = holder.group()
        kind = bound.get(name, name if name in FIELDS else None)
        called = index + 3 < len(tokens) and tokens[index + 3].group() == "("
        if kind is not None and not called and field.group() not in FIELDS[kind]:
            raise ExpressionError(
                f"no field `{field.group()}` on {kind} (it has {', '.join(FIELDS[kind])})",
                field.start(),
            )


def _syntax_error(source: str, text: str) -> ExpressionError:
    found = _POSITION_RE.search(text)
    if found is None:
        return ExpressionError(f"CEL: {text.splitlines()[0] if text else 'cannot compile'}")
    line, column, what = int(found[1]), int(found[2]), found[3]
    lines = source.split("\n")
    offset = sum(len(ln) + 1 for ln in lines[: line - 1]) + column - 1
    return ExpressionError(f"CEL {what[0].lower()}{what[1:]}", offset)


def _first_name(source: str, name: str) -> int | None:
    for token in _TOKEN_RE.finditer(source):
        if token.lastgroup == "name" and token.group() == name:
            return token.start()
    return None


def _try_on_specimens(compiled: Compiled, source: str, over: str) -> None:
    """Run the expression on a sample of every fact: unknown fields, type errors and a
    result that is not a bool are load errors."""
    samples: dict[str, Any] = {"change": {**specimen("change"), "files": [specimen("file")]}}
    samples.update({c: [specimen(single)] for c, single in COLLECTIONS.items()})
    samples[COLLECTIONS[over]] = specimen(COLLECTIONS[over])
    try:
        result = run(compiled, samples)
    except KeyError as exc:
        field = str(exc.args[0]) if exc.args else "?"
        raise ExpressionError(
            f"no field `{field}` in the facts (docs/policy-language.md lists them)",
            _field_offset(source, field),
        ) from None
    except Exception as exc:  # noqa: BLE001 - the engine raises several types
        raise ExpressionError(f"CEL: {_first_line(exc)}") from None
    if not isinstance(result, bool):
        raise ExpressionError(
            f"the expression must be true or false, not {type(result).__name__}", 0
        )


def _field_offset(source: str, field: str) -> int | None:
    found = re.search(rf"\.\s*{re.escape(field)}\b", source)
    return found.start() + 1 if found else None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def run(compiled: Compiled, facts: dict[str, Any]) -> Any:
    """Evaluate with only the facts the expression reads converted (a resolver: a CEL
    Context would convert every bound variable on every run)."""
    context = _cel().Context()
    context.set_variable_resolver(facts.get)
    return compiled.program.execute(context)


def render(template: str, name: str, fact: dict[str, Any], change: dict[str, Any]) -> str:
    """`{image.reference} in {image.file}` over one match (and `{change.title}`)."""

    def value(found: re.Match[str]) -> str:
        holder = fact if found[1] == name else change
        got = holder.get(found[2])
        if isinstance(got, list):
            return ", ".join(str(v) for v in got)
        return "" if got is None else str(got)

    return _TEMPLATE_RE.sub(value, template)


def check_template(template: str, over: str) -> str:
    """Every `{name.field}` of a message names the match or `change`, and a real field."""
    name = COLLECTIONS[over]
    for found in _TEMPLATE_RE.finditer(template):
        if found[1] not in (name, "change"):
            raise ValueError(
                f"`{{{found[1]}.{found[2]}}}`: a message over {over} names {{{name}.…}} "
                "or {change.…}"
            )
        if found[2] not in FIELDS[found[1]]:
            raise ValueError(
                f"`{{{found[1]}.{found[2]}}}`: {found[1]} has {', '.join(FIELDS[found[1]])}"
            )
    return template


def subject_of(name: str, fact: dict[str, Any]) -> str:
    """What a finding is about, as its `subject`."""
    if name == "image":
        return str(fact["reference"])
    if name == "endpoint":
        return f"{fact['kind']}://{fact['host']}:{fact['port']}"
    if name == "dependency":
        return f"{fact['name']} {fact['from'] or '(new)'} -> {fact['to'] or '(removed)'}"
    return str(fact["path"])


class ExpressionRule(RuleBase):
    kind: Literal["expression"] = "expression"
    over: Literal["files", "images", "endpoints", "dependencies"] = Field(
        description="What the expression runs over, one fact at a time, bound to `file`, "
        "`image`, `endpoint` or `dependency`."
    )
    match: str = Field(
        min_length=1,
        description="A CEL expression, true for a fact that is a finding "
        "(docs/policy-language.md lists the facts).",
    )
    message: str = Field(
        min_length=1,
        description="The finding's message: text with `{image.reference}`-style fields of "
        "the match, or of `change`.",
    )

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str, info: ValidationInfo) -> str:
        over = info.data.get("over")
        if over is None:
            return value  # `over` is itself wrong, and reported
        try:
            compile_expression(value, over)
        except ExpressionError as exc:
            raise PydanticCustomError(
                "cel_expression", "{reason}", {"reason": str(exc), "offset": exc.offset}
            ) from None
        return value

    @field_validator("message")
    @classmethod
    def _valid_template(cls, value: str, info: ValidationInfo) -> str:
        over = info.data.get("over")
        return check_template(value, over) if over is not None else value

    @cached_property
    def compiled(self) -> Compiled:
        return compile_expression(self.match, self.over)

    def judged_as(self) -> Literal["change", "lines", "references"]:
        """A file as a whole is about the change; an image, endpoint or dependency about
        its line (untouched lines are reported as already present)."""
        return "change" if self.over == "files" else "lines"

    def check(self, ctx: RuleContext) -> list[Finding]:
        files = [f for f in ctx.view.changed_files() if self.applies_to(f.path)]

        def environment(path: str) -> str:
            return next(iter(ctx.environment_of(path, self)), "")

        change = change_fact(ctx.view, files, environment)
        source = FactSource(change, files, environment, ctx.view)
        facts: dict[str, Any] = {"change": change}
        for collection in COLLECTIONS:
            if collection in self.compiled.names or collection == self.over:
                facts[collection] = source.collection(collection)
        findings = [self.unreadable(p.path, p.reason, p.line) for p in source.problems]
        return findings + self._judge(facts, dict(change))

    def _judge(self, facts: dict[str, Any], change: dict[str, Any]) -> list[Finding]:
        name = COLLECTIONS[self.over]
        items: list[dict[str, Any]] = facts[self.over]
        findings: list[Finding] = []
        unshown: list[dict[str, Any]] = []
        deadline = time.monotonic() + BUDGET_SECONDS
        for index, fact in enumerate(items[:MAX_FACTS]):
            if time.monotonic() > deadline:
                findings.append(self._stopped(fact, f"after {BUDGET_SECONDS:g} s", index, items))
                break
            try:
                result = run(self.compiled, {**facts, name: fact})
            except Exception as exc:  # noqa: BLE001 - fail closed, whatever the engine raised
                result = f"evaluation failed: {_first_line(exc)}"
            if result is False:
                continue
            if len(findings) >= MAX_MATCHES:
                unshown.append(fact)
            elif result is True:
                findings.append(self._at(fact, render(self.message, name, fact, change)))
            else:
                why = result if isinstance(result, str) else f"result {result!r} is not a bool"
                findings.append(self._at(fact, f"{UNREADABLE}{why}", subject_of(name, fact)))
        if unshown:
            findings.append(
                self._at(unshown[0], f"rule {self.id}: {len(unshown)} more matches not shown")
            )
        if len(items) > MAX_FACTS:
            findings.append(self._stopped(items[MAX_FACTS], "at the cap", MAX_FACTS, items))
        return findings

    def _at(self, fact: dict[str, Any], message: str, subject: str | None = None) -> Finding:
        name = COLLECTIONS[self.over]
        if name == "file":
            path = str(fact["path"])
            line = WHOLE_FILE if fact["status"] != "deleted" else None
        else:
            path, line = str(fact["file"]), int(fact["line"]) or None
        return self.finding(path, line, subject or subject_of(name, fact), message)

    def _stopped(self, fact: dict[str, Any], when: str, done: int, items: list[Any]) -> Finding:
        return self._at(
            fact,
            f"{UNREADABLE}rule {self.id} stopped {when}: {done} of {len(items)} {self.over} "
            "judged, the rest were not (narrow its `paths` or simplify `match`)",
        )
