"""What a client's JSON may hold: the limits every body and free-form field is checked against.

One set of rules for every endpoint (``core.serializers`` applies them to DRF bodies and
fields, ``journeys.services.ingestion`` to each event of a batch):

- nesting: at most ``settings.JSON_MAX_DEPTH`` levels of objects and arrays, the body
  itself being level 1 (deeper JSON cannot be decoded, walked or rendered without
  recursion limits, and no field of the API needs it);
- strings PostgreSQL can store: no NUL character, no unpaired surrogate;
- numbers PostgreSQL's jsonb can store: finite (Python's ``json`` reads ``1e400`` as
  infinity);
- a free-form field (``context``, ``metadata``, ``interaction_data``...) is at most
  ``settings.JSON_FIELD_MAX_BYTES`` bytes as compact JSON.

Each problem is reported with the path to it, so the refusal names the field.
"""

from __future__ import annotations

import math
import re
from typing import Any

UNSTORABLE_TEXT = "Text must not contain NUL characters or unpaired surrogates."
NON_FINITE = "Numbers must be finite."


def too_deep(max_depth: int) -> str:
    return f"Nested deeper than {max_depth} levels of objects and arrays."


def too_large(size: int, max_bytes: int) -> str:
    return f"{size} bytes as JSON; the limit is {max_bytes}."


def json_problem(value: Any, max_depth: int, path: tuple = (), depth: int = 1) -> tuple[tuple, str] | None:
    """``(path, reason)`` of the first thing in ``value`` that breaks a rule above, or None.

    ``value`` is level ``depth``; the walk never goes below ``max_depth`` levels, so it
    is bounded however deep the value is.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return path, UNSTORABLE_TEXT
        try:
            value.encode()
        except UnicodeEncodeError:
            return path, UNSTORABLE_TEXT
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, NON_FINITE)
    if isinstance(value, dict):
        if depth > max_depth:
            return path, too_deep(max_depth)
        for key, item in value.items():
            found = json_problem(key, max_depth, (*path, key), depth)
            if found is None:
                found = json_problem(item, max_depth, (*path, key), depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        if depth > max_depth:
            return path, too_deep(max_depth)
        for index, item in enumerate(value):
            found = json_problem(item, max_depth, (*path, index), depth + 1)
            if found is not None:
                return found
    return None


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def deep_path(text: str, max_depth: int) -> tuple:
    """The path to where ``text`` (JSON too deep to decode) first nests deeper than ``max_depth``.

    Used only after a decoder gave up (``RecursionError``): it reads tokens, never
    recursing, so the refusal can still name the field. Keys are read as written
    (escapes left as they are).
    """
    stack: list[list] = []  # per open container: [is_object, key or index, expecting a key]
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            if stack:
                frame = stack[-1]
                frame[2] = False
            if len(stack) + 1 > max_depth:
                return tuple(frame[1] for frame in stack if frame[1] is not None)
            stack.append([token == "{", None if token == "{" else 0, token == "{"])
        elif token in "]}":
            if stack:
                stack.pop()
        elif token == ",":
            if stack:
                frame = stack[-1]
                if frame[0]:
                    frame[2] = True
                else:
                    frame[1] += 1
        elif stack and stack[-1][0] and stack[-1][2]:
            stack[-1][1] = token[1:-1]
            stack[-1][2] = False
    return ()
