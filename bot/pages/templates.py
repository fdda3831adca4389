"""The one renderer of server pages: a Jinja2 template for browsers, the same view as JSON
for scripts, and the security headers on both.

Every page is built as one plain, JSON-ready dict (the "view") that is both rendered by a
template and, for `?format=json` or `Accept: application/json`, returned as is: the JSON
twin can never show something the page does not, or the other way round. The verdict and
admin pages (`bot.pages`) and the start page (`bot.setup.flow`) all render through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

BOT = Path(__file__).resolve().parents[1]
TEMPLATES = BOT / "templates"
STYLESHEET = BOT / "static" / "changegate.css"

SECURITY_HEADERS = {
    # The verdict URL is a capability: never leak it to the forge through Referer.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}


def wants_json(request: Request) -> bool:
    """`?format=json`, or an Accept header that asks for JSON and not HTML."""
    fmt = request.query_params.get("format", "").lower()
    if fmt in ("json", "html"):
        return fmt == "json"
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def when(value: str | None) -> str:
    """Jinja filter: `2024-06-03T09:00:00Z` -> `2024-06-03 09:00 UTC`."""
    if not value:
        return ""
    return value.replace("T", " ")[:16] + " UTC"


def short(sha: str | None) -> str:
    """A commit as people read it: its first seven characters."""
    return (sha or "")[:7]


class Renderer:
    """Templates from `folders` (the first that has a name wins), rendered with `view`
    and the page context (`admin`, `csrf` for the sign-out form, `path` for the menu)."""

    def __init__(self, *folders: Path) -> None:
        self.env = Environment(
            loader=FileSystemLoader([str(f) for f in folders or (TEMPLATES,)]),
            autoescape=select_autoescape(("html",)),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = when
        self.env.filters["short"] = short

    def render(
        self,
        request: Request,
        template: str,
        view: Mapping[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Response:
        """The JSON twin or the HTML page of one view."""
        all_headers = {**SECURITY_HEADERS, **(headers or {})}
        if wants_json(request):
            return JSONResponse(dict(view), status_code=status, headers=all_headers)
        page = {"admin": False, "csrf": "", "path": request.url.path, **(context or {})}
        html = self.env.get_template(template).render(view=view, **page)
        return HTMLResponse(html, status_code=status, headers=all_headers)

    def error(self, request: Request, status: int, message: str) -> Response:
        """`error.html`, or its JSON twin `{"error", "status"}`."""
        view = {"error": message, "status": status}
        return self.render(request, "error.html", view, status=status)


async def stylesheet(_request: Request) -> Response:
    """The one stylesheet, cacheable (it holds nothing private)."""
    return Response(
        STYLESHEET.read_bytes(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


STYLESHEET_ROUTE = Route("/static/changegate.css", stylesheet, methods=["GET"])
