"""Server settings: `CHANGEGATE_*` environment variables or a `.env` file.

Built by the app factory and the CLI, never at import time, so tests and several servers
in one process can each hold their own. A forge whose settings are unset is off, not
half-working; the `*_enabled` properties say which are on.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.durations import parse_duration

DEFAULT_DATABASE_URL = "sqlite:///changegate.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHANGEGATE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = DEFAULT_DATABASE_URL
    policy: Path = Path("policies/default.yml")
    public_url: str = "http://127.0.0.1:8000"

    github_app_id: str | None = None
    github_private_key_path: Path | None = None
    github_webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_throttle: bool = Field(
        default=True,
        description="Space API writes 1 s apart, as GitHub asks of integrations; "
        "off only for a local stand-in.",
    )

    github_app_file: Path | None = Field(
        default=None,
        description="Where an App registered from the start page is kept (0600); default: "
        "changegate-github-app.json beside the SQLite database, else in the working directory.",
    )

    github_client_id: str | None = Field(
        default=None, description='The GitHub App\'s client id: "Sign in with GitHub" on /admin.'
    )
    github_client_secret: SecretStr | None = None
    admin_github: str | None = Field(
        default=None,
        description="Who may sign in to /admin with GitHub: logins and @org/team slugs, "
        "comma-separated (teams are read with the App's `members: read`).",
    )

    gitlab_url: str | None = None
    gitlab_token: SecretStr | None = None
    gitlab_webhook_secret: SecretStr | None = None

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    admin_token: SecretStr | None = Field(
        default=None, description="Sign-in token of /admin; unset: admin pages off (404)."
    )
    slack_default_channel: str | None = Field(
        default=None,
        description="Channel for approval requests when neither the rule nor the group names one.",
    )
    slack_match_email: bool = Field(
        default=False,
        description="A Slack user that `people:` does not list is the person whose `email` is "
        "their Slack profile's e-mail (needs users:read.email; use where Slack e-mails are "
        "verified, e.g. by SSO).",
    )
    slack_usergroup_ttl_seconds: float = Field(
        default=300.0, ge=0, description="How long Slack user-group members are cached."
    )
    approval_expires_after: str = Field(
        default="72h", description="How long a pull/merge request's approval request stays open."
    )
    approvals_tick_seconds: float = Field(
        default=60.0, ge=0, description="Expiry and reminder sweep interval; 0: never."
    )

    # -- operations -------------------------------------------------------------------
    redelivery_interval_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How often missed GitHub deliveries are asked for again and GitLab merge "
        "requests without a status re-checked; 0 turns it off.",
    )
    redelivery_lookback_seconds: float = Field(
        default=86_400.0, gt=0, description="How far back the first round looks."
    )
    worker_count: int = Field(
        default=2,
        ge=0,
        description="Workers: `serve` runs them as child processes (one worker each), "
        "`changegate worker` as threads.",
    )
    lease_seconds: float = Field(
        default=300.0, gt=0, description="Claim lease; renewed while busy."
    )
    max_attempts: int = Field(default=8, ge=1, description="Attempts before dead-lettering.")
    backoff_base_seconds: float = Field(default=2.0, ge=0)
    backoff_max_seconds: float = Field(default=600.0, ge=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0, description="Idle worker poll.")
    max_body_bytes: int = Field(default=25 * 1024 * 1024, gt=0, description="Webhook bodies.")
    slack_max_body_bytes: int = Field(
        default=64 * 1024, gt=0, description="Slack interaction bodies (Slack's are a few KB)."
    )
    unverified_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Bytes of bodies read but not yet verified, across all requests; over "
        "it, 503 (a flood of forged 24 MB POSTs holds no more memory than this).",
    )
    policy_reload_seconds: float = Field(default=5.0, ge=0, description="0: never reload.")
    shutdown_timeout_seconds: float = Field(
        default=60.0, ge=0, description="On SIGTERM, how long in-flight work may take to finish."
    )
    worker_metrics_port: int | None = Field(
        default=None, description="`changegate worker` serves /metrics on this port if set."
    )

    @property
    def github_enabled(self) -> bool:
        return bool(
            self.github_app_id and self.github_private_key_path and self.github_webhook_secret
        )

    @property
    def gitlab_enabled(self) -> bool:
        return bool(self.gitlab_url and self.gitlab_token and self.gitlab_webhook_secret)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @field_validator("approval_expires_after")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    def summary(self) -> dict[str, str]:
        """What is on and off, for the start-up log line (never a secret)."""
        return {
            "database": _redact_url(self.database_url),
            "policy": str(self.policy),
            "public_url": self.public_url,
            "github": f"on ({self.github_api_url})" if self.github_enabled else "off",
            "gitlab": f"on ({self.gitlab_url})" if self.gitlab_enabled else "off",
            "slack": "on" if self.slack_enabled else "off",
            "admin pages": self.admin_sign_in(),
            "workers": str(self.worker_count),
        }

    @property
    def admin_github_entries(self) -> tuple[str, ...]:
        """`admin_github` as its logins and `@org/team` slugs."""
        return tuple(e.strip() for e in (self.admin_github or "").split(",") if e.strip())

    @property
    def github_sign_in_enabled(self) -> bool:
        """ "Sign in with GitHub" on /admin: the App's client credentials, and someone allowed."""
        return bool(
            self.github_client_id and self.github_client_secret and self.admin_github_entries
        )

    def admin_sign_in(self) -> str:
        ways = [
            *(["token"] if self.admin_token is not None else []),
            *(["GitHub"] if self.github_sign_in_enabled else []),
        ]
        return f"on (sign in with {' or '.join(ways)})" if ways else "off"


def secret(value: SecretStr | None) -> str | None:
    """The plain value of an optional secret setting."""
    return value.get_secret_value() if value is not None else None


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a bad URL is reported later, by the engine
        return "<unparsable database url>"
