"""The one renderer (bot/pages/templates.py): page or JSON twin, security headers, the
stylesheet."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.pages.templates import SECURITY_HEADERS, TEMPLATES, Renderer


def test_stylesheet_is_served(client: TestClient) -> None:
    r = client.get("/static/changegate.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert "@media" in r.text


def _app(
    renderer: Renderer, template: str, view: dict[str, object], **context: object
) -> Starlette:
    async def page(request: Request) -> Response:
        return renderer.render(request, template, view, context=context or None)

    async def missing(request: Request) -> Response:
        return renderer.error(request, 404, "No such thing")

    return Starlette(routes=[Route("/page", page), Route("/missing", missing)])


def test_the_same_view_is_a_page_or_its_json_twin(tmp_path: Path) -> None:
    (tmp_path / "one.html").write_text("{{ view.name }}|{{ admin }}|{{ csrf }}|{{ path }}")
    view = {"name": "<b>x</b>", "at": "2024-06-03T09:00:00Z"}
    with TestClient(_app(Renderer(tmp_path), "one.html", view)) as c:
        page = c.get("/page")
        assert page.text == "&lt;b&gt;x&lt;/b&gt;|False||/page"  # escaped, signed-out context
        assert page.headers["content-type"].startswith("text/html")
        assert c.get("/page?format=json").json() == view
        assert c.get("/page", headers={"Accept": "application/json"}).json() == view
        assert c.get("/page?format=html", headers={"Accept": "application/json"}).text == (
            page.text
        )
        for response in (page, c.get("/page?format=json")):
            for name, value in SECURITY_HEADERS.items():
                assert response.headers[name] == value


def test_the_page_context_and_filters(tmp_path: Path) -> None:
    (tmp_path / "two.html").write_text(
        "{{ admin }} {{ csrf }} {{ view.at | when }} {{ view.sha | short }}"
    )
    view = {"at": "2024-06-03T09:00:00Z", "sha": "3f9c2d1e8b7a"}
    with TestClient(_app(Renderer(tmp_path), "two.html", view, admin=True, csrf="c1")) as c:
        assert c.get("/page").text == "True c1 2024-06-03 09:00 UTC 3f9c2d1"


def test_the_first_folder_wins_and_the_pages_templates_fill_in(tmp_path: Path) -> None:
    (tmp_path / "error.html").write_text("mine: {{ view.error }}")
    with TestClient(_app(Renderer(tmp_path, TEMPLATES), "error.html", {"error": "x"})) as c:
        assert c.get("/page").text == "mine: x"
    with TestClient(_app(Renderer(tmp_path / "none", TEMPLATES), "error.html", {})) as c:
        missing = c.get("/missing")
        assert missing.status_code == 404 and "No such thing" in missing.text
        assert c.get("/missing?format=json").json() == {"error": "No such thing", "status": 404}
