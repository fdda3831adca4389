"""The OCI reference grammar and template detection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.formats.images import Reference, has_template, parse_reference

from .reading import SHA

# -- the grammar -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", Reference(None, "nginx")),
        ("nginx:1.25.3", Reference(None, "nginx", "1.25.3")),
        ("library/nginx:latest", Reference(None, "library/nginx", "latest")),
        ("docker.io/library/nginx", Reference("docker.io", "library/nginx")),
        ("localhost:5000/app", Reference("localhost:5000", "app")),
        ("localhost:5000/app:1.0", Reference("localhost:5000", "app", "1.0")),
        ("localhost/app", Reference("localhost", "app")),
        ("registry:5000/team/app", Reference("registry:5000", "team/app")),
        ("Registry.Example.com/app:v2", Reference("Registry.Example.com", "app", "v2")),
        ("[::1]:5000/app:v1", Reference("[::1]:5000", "app", "v1")),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:2024.06.01",
            Reference("123456789012.dkr.ecr.us-east-1.amazonaws.com", "web", "2024.06.01"),
        ),
        (f"name:tag@{SHA}", Reference(None, "name", "tag", SHA)),
        (f"ghcr.io/org/app@{SHA}", Reference("ghcr.io", "org/app", None, SHA)),
        ("foo_bar/baz__qux/a--b:x", Reference(None, "foo_bar/baz__qux/a--b", "x")),
        ("app:RC1", Reference(None, "app", "RC1")),
    ],
)
def test_parses_valid_references(text: str, expected: Reference) -> None:
    parsed = parse_reference(text)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Nginx",  # upper case is a registry only when a path follows
        "nginx:",
        "nginx:-bad",
        ":latest",
        "nginx@sha256:abc",  # too short a digest
        "nginx@sha256:" + "0" * 63,  # sha256 is exactly 64 hex digits
        "my image",
        "a//b",
        "/abs/path",
        "http://ghcr.io/app",
        "a" * 256,
        "CONTAINER_IMAGE",
        "gcr.io/PROJECT_ID/app",
        "nginx:" + "t" * 129,
    ],
)
def test_rejects_non_references(text: str) -> None:
    assert parse_reference(text) is None


def test_implicit_registry_is_docker_hub() -> None:
    ref = parse_reference("nginx:1.25")
    assert ref is not None and ref.registry is None and ref.domain == "docker.io"
    local = parse_reference("localhost:5000/app")
    assert local is not None and local.domain == "localhost:5000" and local.tag is None


@pytest.mark.parametrize(
    ("text", "template"),
    [
        ("{{ .Values.image.repository }}:{{ .Values.image.tag }}", True),
        ("${{ matrix.image }}", True),
        ("$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA", True),
        ("ghcr.io/acme/app:${TAG}", True),
        ("<image_url>", True),
        ("CONTAINER_IMAGE", True),
        ("gcr.io/PROJECT_ID/hello-app:v1", True),
        ("$[[ inputs.image ]]", True),
        ("__IMAGE__", True),
        ("acme/foo__bar__baz:1", False),
        ("nginx:1.25", False),
        ("app:RC1", False),
    ],
)
def test_template_detection(text: str, template: bool) -> None:
    assert has_template(text) is template


_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_alnum = st.text(alphabet=_LOWER, min_size=1, max_size=8)
_component = st.builds(
    lambda first, rest: first + "".join(sep + word for sep, word in rest),
    _alnum,
    st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "---"]), _alnum), max_size=2),
)
_host = st.lists(_alnum, min_size=2, max_size=3).map(".".join)
_domain = st.one_of(
    st.just("localhost"),
    _host,
    st.builds(lambda h, p: f"{h}:{p}", st.just("localhost") | _host, st.integers(1, 65535)),
)
_tag = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_LOWER + "ABCXYZ_"),
    st.text(alphabet=_LOWER + "ABCXYZ_.-", max_size=20),
)
_digest = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())


@st.composite
def references(draw: st.DrawFn) -> Reference:
    registry = draw(st.none() | _domain)
    components = draw(st.lists(_component, min_size=1, max_size=3))
    if registry is None and len(components) > 1 and "." in components[0]:
        # `a.b/c` reads as registry `a.b`: the grammar's rule, not a round-trip failure.
        registry = "docker.io"
    repository = "/".join(components)
    return Reference(registry, repository, draw(st.none() | _tag), draw(st.none() | _digest))


@settings(max_examples=200, deadline=None)
@given(references())
def test_round_trips_generated_references(ref: Reference) -> None:
    text = str(ref)
    assert parse_reference(text) == ref


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    parsed = parse_reference(text)
    if parsed is not None:
        assert parse_reference(str(parsed)) == parsed
    has_template(text)
