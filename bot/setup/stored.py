"""Where a GitHub App registered through the manifest flow is kept, and how it is read.

The conversion answers with the App's id, private key, webhook secret and client
id/secret once; they are written to `changegate-github-app.json` beside the SQLite
database (or in the working directory for another database; the `github_app_file`
setting moves it), mode 0600, together with the key as `changegate-github-app.pem` so
that `CHANGEGATE_GITHUB_PRIVATE_KEY_PATH` can point at it later. Settings from the
environment always win: the file only fills what the environment left unset.

Every process that shares the file (the server and `changegate worker`s) picks a newly
registered App up without a restart: `refresh` stats the file and applies it when it
appeared or changed; it is called while GitHub is not configured, so a configured server
never touches the disk for it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bot.settings import Settings

log = logging.getLogger(__name__)

FILE_NAME = "changegate-github-app.json"
KEY_NAME = "changegate-github-app.pem"

#: settings the file can fill, and the file's field for each
_FIELDS = {
    "github_app_id": "app_id",
    "github_private_key_path": "key_path",
    "github_webhook_secret": "webhook_secret",
    "github_client_id": "client_id",
    "github_client_secret": "client_secret",
    "github_api_url": "api_url",
}
_SECRET = {"github_webhook_secret", "github_client_secret"}


@dataclass(frozen=True)
class StoredApp:
    """One registered App, as the conversion returned it (plus where it lives)."""

    app_id: str
    slug: str
    html_url: str
    owner: str
    client_id: str
    client_secret: str
    webhook_secret: str
    api_url: str
    web_url: str
    key_path: str = ""

    @classmethod
    def from_conversion(cls, data: dict[str, Any], api_url: str, web_url: str) -> StoredApp:
        """From the body of `POST /app-manifests/{code}/conversions`."""
        owner = data.get("owner") or {}
        return cls(
            app_id=str(data["id"]),
            slug=str(data.get("slug") or ""),
            html_url=str(data.get("html_url") or ""),
            owner=str(owner.get("login") or ""),
            client_id=str(data.get("client_id") or ""),
            client_secret=str(data.get("client_secret") or ""),
            webhook_secret=str(data["webhook_secret"]),
            api_url=api_url,
            web_url=web_url,
        )


def app_file(settings: Settings) -> Path:
    """The file of the registered App: the `github_app_file` setting, else beside the
    SQLite database, else in the working directory."""
    explicit = getattr(settings, "github_app_file", None)
    if explicit:
        return Path(explicit)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / FILE_NAME
    return Path.cwd() / FILE_NAME


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, replacing it atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save(path: Path, app: StoredApp, pem: str) -> StoredApp:
    """Keep the App (and its key beside it), both 0600; return it with its key path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.with_name(KEY_NAME)
    _write_private(key, pem)
    kept = StoredApp(**{**asdict(app), "key_path": str(key)})
    _write_private(path, json.dumps(asdict(kept), indent=2) + "\n")
    return kept


def load(path: Path) -> StoredApp | None:
    """The App kept in `path`, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StoredApp(**{k: str(data[k]) for k in StoredApp.__dataclass_fields__})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("cannot read the registered GitHub App in %s: %s", path, exc)
        return None


def apply(settings: Settings, app: StoredApp) -> list[str]:
    """Fill the GitHub settings the environment left unset; return the ones filled."""
    explicit: set[str] = getattr(settings, "model_fields_set", set())
    filled = []
    for name, attr in _FIELDS.items():
        if name in explicit or (name != "github_api_url" and getattr(settings, name)):
            continue
        value: Any = getattr(app, attr)
        if not value:
            continue
        if name in _SECRET:
            value = SecretStr(value)
        elif name == "github_private_key_path":
            value = Path(value)
        setattr(settings, name, value)
        filled.append(name)
    return filled


_lock = threading.Lock()
_read: dict[Path, tuple[float, StoredApp | None]] = {}  # file -> (mtime, what it held)


def refresh(settings: Settings) -> bool:
    """Apply the kept App if GitHub is not configured yet; True when it is afterwards.
    The file is read again only when its mtime changed (a broken file is logged once)."""
    if settings.github_enabled:
        return True
    path = app_file(settings)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return False
    with _lock:
        cached = _read.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, load(path))
            _read[path] = cached
    app = cached[1]
    if app is not None and apply(settings, app):
        log.info("GitHub App %s read from %s", app.app_id, path)
    return bool(settings.github_enabled)


def webhook_secret(settings: Settings) -> SecretStr | None:
    """The current GitHub webhook secret: the setting, or the registered App's once there
    is one (the ingress asks for every delivery, so a registration needs no restart)."""
    if settings.github_webhook_secret is None:
        refresh(settings)
    return settings.github_webhook_secret
