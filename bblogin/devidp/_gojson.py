"""JSON bytes as Go's encoding/json writes them: key order as given, `<`, `>`, `&` escaped
unless told otherwise, MarshalIndent's layout, and the Encoder's trailing newline."""

from __future__ import annotations

import json
from typing import Any

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def dumps(value: Any, *, indent: int | None = None, escape_html: bool = True, newline: bool = False) -> bytes:
    """json.Marshal (indent=None), json.MarshalIndent(v, "", " " * indent); newline=True for
    json.NewEncoder(w).Encode."""
    separators = (",", ": ") if indent is not None else (",", ":")
    text = json.dumps(value, ensure_ascii=False, indent=indent, separators=separators)
    for char, escape in _HTML_ESCAPES.items():
        if char in text and (escape_html or char in "\u2028\u2029"):
            text = text.replace(char, escape)
    return (text + ("\n" if newline else "")).encode()


def quote(value: str) -> str:
    """fmt's %q of a string (strconv.Quote, close enough for printable text)."""
    return json.dumps(value, ensure_ascii=False)


def quote_list(values: list[str]) -> str:
    """fmt's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(quote(v) for v in values) + "]"
