"""Who may talk to us as Slack: request signatures, and button values nobody can forge.

Slack signs every request (`v0` HMAC over the raw body, slack-sdk's SignatureVerifier):
`RequestVerifier` adds the 5-minute window and refuses replays. Button values carry the
request id and the SHA, MAC'd with a key derived from the signing secret (`ButtonSigner`):
a value cannot be made up or moved to another request or commit, even by someone who can
craft an interaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Mapping

from slack_sdk.signature import Clock, SignatureVerifier

SIGNATURE_WINDOW_SECONDS = 60 * 5


class InteractionError(ValueError):
    """An interaction payload that is malformed or carries a forged value."""


class ButtonSigner:
    """MACs `(request id, sha)` into button values and modal metadata."""

    def __init__(self, signing_secret: str) -> None:
        if not signing_secret:
            raise ValueError("a signing secret is needed to sign button values")
        self._key = hmac.new(
            signing_secret.encode(), b"changegate-button-v1", hashlib.sha256
        ).digest()

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def value(self, request_id: str, sha: str) -> str:
        return f"{request_id}.{sha}.{self._mac(f'{request_id}.{sha}')}"

    def parse(self, value: str) -> tuple[str, str]:
        """(request id, sha) of a value this signer made; InteractionError otherwise."""
        parts = value.split(".")
        if len(parts) != 3 or not all(parts):
            raise InteractionError("button value is not one of ours")
        request_id, sha, mac = parts
        if not hmac.compare_digest(mac, self._mac(f"{request_id}.{sha}")):
            raise InteractionError("button value has a bad signature (forged or altered)")
        return request_id, sha

    def seal(self, data: dict[str, str]) -> str:
        """JSON plus a MAC, for a modal's `private_metadata` (max 3000 characters)."""
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return json.dumps({"d": text, "m": self._mac(text)}, separators=(",", ":"))

    def unseal(self, sealed: str) -> dict[str, str]:
        try:
            outer = json.loads(sealed)
            text, mac = outer["d"], outer["m"]
        except (ValueError, TypeError, KeyError) as exc:
            raise InteractionError("modal metadata is not one of ours") from exc
        if not isinstance(text, str) or not hmac.compare_digest(str(mac), self._mac(text)):
            raise InteractionError("modal metadata has a bad signature (forged or altered)")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise InteractionError("modal metadata is not an object")
        return {str(k): str(v) for k, v in data.items()}


class RequestVerifier:
    """Slack's `v0` signature over the raw body, a 5-minute window, and no replays.

    Replays are caught by remembering each accepted signature until it falls out of the
    window (in this process); across processes the inbox deduplicates on
    `delivery_id(headers)`, which is derived from the same signature.
    """

    def __init__(self, signing_secret: str, *, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._verifier = SignatureVerifier(signing_secret, clock=self.clock)
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def problem(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """None when the request is authentic and fresh, else why it is not."""
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp = lower.get("x-slack-request-timestamp")
        signature = lower.get("x-slack-signature")
        if not timestamp or not signature:
            return "missing Slack signature headers"
        try:
            sent = int(timestamp)
        except ValueError:
            return "bad Slack request timestamp"
        now = self.clock.now()
        if abs(now - sent) > SIGNATURE_WINDOW_SECONDS:
            return "stale Slack request (more than 5 minutes old)"
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return "bad Slack signature"
        with self._lock:
            for key, until in list(self._seen.items()):
                if until < now:
                    del self._seen[key]
            if signature in self._seen:
                return "replayed Slack request"
            self._seen[signature] = sent + SIGNATURE_WINDOW_SECONDS
        return None

    def is_valid(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return self.problem(body, headers) is None


def delivery_id(headers: Mapping[str, str]) -> str:
    """An inbox key for an interaction: the same request sent twice gets the same key."""
    lower = {k.lower(): v for k, v in headers.items()}
    signature = lower.get("x-slack-signature", "")
    return hashlib.sha256(signature.encode()).hexdigest()[:40]
