"""How a file's bytes become text: what counts as binary, what is too large, and the note
a reader gets when bytes were replaced (docs/reading-files.md)."""

from __future__ import annotations


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


#: Share of a file's first bytes that may be NUL, control or undecodable and it is still text.
BINARY_SHARE = 0.10
_SAMPLE = 8192
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\x1b")


def _looks_binary(data: bytes) -> bool:
    """Mostly not text: a stray NUL or bad byte in a manifest is not enough (it is still
    read), a PNG or a random blob named `.yaml` is."""
    sample = data[:_SAMPLE].decode("utf-8", "replace")
    if not sample:
        return False
    odd = sum(1 for c in sample if c == "\ufffd" or (c < " " and c not in _TEXT_CONTROLS))
    return odd / len(sample) > BINARY_SHARE


def _utf16(data: bytes) -> bool:
    return data.startswith((b"\xff\xfe", b"\xfe\xff"))


def undecodable_reason(data: bytes, max_bytes: int) -> str | None:
    """Why a file cannot be read as text at all, saying how to get it read; None if it can."""
    if len(data) > max_bytes:
        return (
            f"file is {len(data):,} bytes ({_mib(len(data))}), over the {_mib(max_bytes)} "
            "limit changegate reads; split it into smaller files or keep generated data out "
            "of the rule's paths"
        )
    if not _utf16(data) and _looks_binary(data):
        return (
            "binary file: most of its first bytes are not text; commit it as UTF-8 text, "
            "or keep it out of the rule's paths"
        )
    return None


def decoding_note(data: bytes, soft_max_bytes: int) -> str | None:
    """One sentence about how a readable file was read, when that is not plainly."""
    notes: list[str] = []
    if len(data) > soft_max_bytes:
        notes.append(f"file is {_mib(len(data))}, over {_mib(soft_max_bytes)}; read in full")
    if not _utf16(data):
        if b"\x00" in data:
            notes.append("it holds NUL bytes, read as U+FFFD")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            notes.append(f"not valid UTF-8 (first bad byte at offset {exc.start}), read as U+FFFD")
    return "; ".join(notes) or None


def decode_text(data: bytes | None, max_bytes: int) -> str | None:
    """The text of a file: UTF-8 (or UTF-16 with a BOM), bad bytes and NULs as U+FFFD."""
    if data is None or undecodable_reason(data, max_bytes) is not None:
        return None
    if _utf16(data):
        text = data.decode("utf-16", "replace")
    else:
        text = data.decode("utf-8", "replace").replace("\x00", "\ufffd")
    return text[1:] if text.startswith("\ufeff") else text
