"""A small YAML writer for the generated files: block style only, stable output, no dependency.

It writes the subset the generator produces (dicts, lists, strings, numbers, booleans, None);
long or quote-laden strings such as PromQL become `|-` literal blocks so they read like code.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_/.][A-Za-z0-9_ ./:@(),+=-]*")
_NUMBER_LIKE = re.compile(r"[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?|0[xXoObB][0-9a-fA-F_]+")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}
_BLOCK_AFTER = 60


def dump(data: Any) -> str:
    """Render `data` as a YAML document (without the leading `---`)."""
    return "".join(_node(data, 0)) + ""


def _node(value: Any, indent: int) -> list[str]:
    if isinstance(value, dict):
        return _mapping(value, indent)
    if isinstance(value, list):
        return _sequence(value, indent)
    return [" " * indent + _scalar(value, indent) + "\n"]


def _mapping(mapping: dict[str, Any], indent: int) -> list[str]:
    if not mapping:
        return [" " * indent + "{}\n"]
    lines: list[str] = []
    for key, value in mapping.items():
        lines.extend(_entry(" " * indent + _key(key) + ":", value, indent))
    return lines


def _sequence(items: list[Any], indent: int) -> list[str]:
    if not items:
        return [" " * indent + "[]\n"]
    lines: list[str] = []
    for item in items:
        if isinstance(item, dict) and item:
            body = _mapping(item, indent + 2)
            lines.append(" " * indent + "- " + body[0][indent + 2 :])
            lines.extend(body[1:])
        else:
            lines.extend(_entry(" " * indent + "-", item, indent))
    return lines


def _entry(head: str, value: Any, indent: int) -> list[str]:
    """`head` is `key:` or `-`; nested collections go below it, scalars on the same line."""
    if isinstance(value, dict) and value:
        return [head + "\n", *_mapping(value, indent + 2)]
    if isinstance(value, list) and value:
        return [head + "\n", *_sequence(value, indent + 2)]
    if isinstance(value, (dict, list)):
        return [head + (" {}" if isinstance(value, dict) else " []") + "\n"]
    return [head + " " + _scalar(value, indent + 2) + "\n"]


def _key(key: str) -> str:
    return key if _is_plain(key) else json.dumps(key, ensure_ascii=False)


def _scalar(value: Any, indent: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _is_plain(text):
        return text
    if _wants_block(text):
        pad = " " * indent
        return "|-\n" + "\n".join(pad + line if line else "" for line in text.split("\n"))
    return json.dumps(text, ensure_ascii=False)


def _is_plain(text: str) -> bool:
    return (
        bool(_PLAIN.fullmatch(text))
        and text.lower() not in _RESERVED
        and not _NUMBER_LIKE.fullmatch(text)
        and ": " not in text
        and not text.endswith((":", " "))
    )


def _wants_block(text: str) -> bool:
    long_or_multiline = "\n" in text or len(text) > _BLOCK_AFTER
    clean_edges = text == text.strip() and not text.startswith(("#", "-", "|", ">"))
    printable = all(ch == "\n" or ch.isprintable() for ch in text)
    return long_or_multiline and clean_edges and printable
