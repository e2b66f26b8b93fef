"""The one rule for ids a client chooses (session, visitor, SKU): they appear in URLs
(``/sessions/{session_id}/stage``, ``/offers/{sku}/stock``), so they hold only URL-safe
characters (RFC 3986's unreserved ones), are of bounded length and are never ``.`` or
``..`` (which a URL would resolve away)."""

from __future__ import annotations

CLIENT_ID_MAX_LENGTH = 100
CLIENT_ID_CHARACTERS = "A-Za-z0-9._~-"


def client_id_pattern(max_length: int = CLIENT_ID_MAX_LENGTH) -> str:
    """The rule as a regular expression (OpenAPI, msgspec and Django validators take it as it is)."""
    return rf"^[A-Za-z0-9_~-][{CLIENT_ID_CHARACTERS}]{{0,{max_length - 1}}}$"


def client_id_rule(max_length: int = CLIENT_ID_MAX_LENGTH) -> str:
    """The rule in words, the reason given when an id breaks it."""
    return (
        f"Use 1 to {max_length} of the characters A-Z a-z 0-9 - _ . ~ (usable in a URL as they are), "
        "not starting with '.'."
    )
