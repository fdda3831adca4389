"""Finishing a GitHub App registered from a manifest: the one call the setup page makes."""

from __future__ import annotations

import urllib.parse
from typing import Any

from github import Github, GithubException


class ConversionRefused(Exception):
    """GitHub answered the conversion with an error status (a used or expired code: 404/422)."""

    def __init__(self, status: int, data: Any) -> None:
        super().__init__(f"GitHub answered {status}")
        self.status = status
        self.data = data


def convert_manifest_code(api_url: str, code: str) -> dict[str, Any]:
    """`POST /app-manifests/{code}/conversions` with PyGithub's requester: no credentials,
    the code is the credential. Returns the App's id, key, secret and client credentials;
    raises `ConversionRefused` when GitHub refuses the code, anything else when GitHub
    cannot be reached."""
    gh = Github(base_url=api_url, timeout=15, retry=None)
    try:
        _headers, data = gh.requester.requestJsonAndCheck(
            "POST", f"/app-manifests/{urllib.parse.quote(code, safe='')}/conversions"
        )
    except GithubException as exc:
        raise ConversionRefused(exc.status, exc.data) from exc
    finally:
        gh.close()
    return dict(data)
