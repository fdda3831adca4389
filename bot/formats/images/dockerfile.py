"""Dockerfiles: `FROM`, `COPY --from` and `RUN --mount=from=` images, ARG defaults substituted."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping

from dockerfile_parse import DockerfileParser

from bot.formats.images.records import ImageRef
from bot.formats.images.reference import has_template, substitute

DOCKERFILE_RE = re.compile(
    r"^(?:dockerfile|containerfile)(?:[.-].*)?$|^.+\.(?:dockerfile|containerfile)$", re.I
)

_HEREDOC_RE = re.compile(r"<<-?\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1")
_FROM_FLAG_RE = re.compile(r"^--[A-Za-z-]+=\S*$")


def dockerfile_images(path: str, text: str) -> list[ImageRef]:
    """`FROM` and `COPY --from` / `RUN --mount=from=` images, ARG defaults substituted.

    dockerfile-parse reads continuation lines and comments; it does not know heredocs
    (`RUN <<EOF`), whose bodies it would read as instructions, and it cannot read files
    with stray carriage returns or NULs. Those files are read line by line instead.
    """
    instructions = _dockerfile_instructions(text)
    out: list[ImageRef] = []
    global_args: dict[str, str] = {}  # ARGs before the first FROM: what FROM lines see
    stage_args: dict[str, str] = {}  # what the current stage's instructions see
    stages: set[str] = set()
    in_stage = False
    for name, value, line in instructions:
        if name == "ARG":
            scope = stage_args if in_stage else global_args
            for word in _split_words(value):
                arg, eq, default = word.partition("=")
                if eq:
                    scope[arg] = substitute(_unquote(default), scope)
                elif in_stage and arg in global_args:
                    scope[arg] = global_args[arg]  # `ARG X` re-declares the global default
        elif name == "FROM":
            in_stage = True
            stage_args = {}
            words = [w for w in _split_words(value) if not _FROM_FLAG_RE.match(w)]
            if not words:
                continue
            image = words[0]
            if image.lower() not in stages:
                _docker_image(out, path, image, line, global_args)
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
        elif name in ("COPY", "ADD", "RUN"):
            for source in _from_flags(value):
                if source.lower() in stages or source.isdigit():
                    continue  # an earlier stage, by name or by index
                _docker_image(out, path, source, line, stage_args)
    return out


def _docker_image(
    out: list[ImageRef], path: str, image: str, line: int, args: Mapping[str, str]
) -> None:
    value = substitute(image, args)
    if value.lower() == "scratch":
        return
    out.append(ImageRef(path, line, image, "dockerfile", has_template(value), value))


def _from_flags(value: str) -> Iterator[str]:
    for word in _split_words(value):
        if word.startswith("--from="):
            yield _unquote(word[len("--from=") :])
        elif word.startswith("--mount="):
            for part in word[len("--mount=") :].split(","):
                key, _, val = part.partition("=")
                if key == "from" and val:
                    yield _unquote(val)
        elif not word.startswith("--"):
            return  # flags come first


def _split_words(value: str) -> list[str]:
    return value.split()


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _dockerfile_instructions(text: str) -> list[tuple[str, str, int]]:
    """(INSTRUCTION, value, 1-based line) of every instruction."""
    if (
        "\r" not in text.replace("\r\n", "\n")
        and "\x00" not in text
        and not _HEREDOC_RE.search(text)
    ):
        try:
            parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
            found = [
                (str(i["instruction"]).upper(), str(i["value"]), int(i["startline"]) + 1)
                for i in parser.structure
                if i["instruction"] != "COMMENT"
            ]
            # dockerfile-parse splits the keyword at the first space, so `FROM\` continued
            # on the next line comes back as an instruction named `FROM\`: read by lines.
            if all(name.isalpha() for name, _, _ in found):
                return found
        except Exception:  # noqa: BLE001 - any failure means: read it line by line
            pass
    return _dockerfile_lines(text)


def _dockerfile_lines(text: str) -> list[tuple[str, str, int]]:
    """A line reader that knows comments, `\\` continuations and heredoc bodies."""
    out: list[tuple[str, str, int]] = []
    lines = re.split(r"\r\n|\r|\n", text)
    escape = "\\"
    match = re.match(r"#\s*escape\s*=\s*(\S)", lines[0] if lines else "")
    if match:
        escape = match.group(1)
    i = 0
    while i < len(lines):
        start = i
        line = lines[i].replace("\x00", "")
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [stripped]
        # Docker drops comment and blank lines inside a continuation and reads on.
        while parts[-1].endswith(escape) and i < len(lines):
            parts[-1] = parts[-1][:-1]
            while i < len(lines):
                nxt = lines[i].replace("\x00", "").strip()
                i += 1
                if nxt and not nxt.startswith("#"):
                    parts.append(nxt)
                    break
        joined = " ".join(p.strip() for p in parts if p.strip())
        name, _, value = joined.partition(" ")
        out.append((name.upper(), value.strip(), start + 1))
        for heredoc in _HEREDOC_RE.finditer(joined):
            # A BuildKit heredoc body runs to its terminator line; an old-style shell
            # heredoc inside `\\` continuations has none, and nothing is skipped.
            end = heredoc.group(2)
            for j in range(i, len(lines)):
                if lines[j].strip() == end:
                    i = j + 1
                    break
    return out
