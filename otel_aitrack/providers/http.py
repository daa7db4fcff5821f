"""HTTP facts every provider reads the same way: the server of a base URL, a response's status and headers."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from .. import names

_DEFAULT_PORTS = {"https": 443, "http": 80}


def server_attributes(base_url: object) -> dict[str, Any]:
    """`server.address` and `server.port` of the client's base URL."""
    return {} if base_url is None else dict(_server_attributes(str(base_url)))


@functools.lru_cache(maxsize=256)
def _server_attributes(base_url: str) -> tuple[tuple[str, Any], ...]:
    parts = urlsplit(base_url)
    if not parts.hostname:
        return ()
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    return ((names.SERVER_ADDRESS, parts.hostname),) + (((names.SERVER_PORT, port),) if port else ())


def response_attributes(response: Any, request_id_header: str) -> dict[str, Any]:
    """Status and request id of a raw HTTP response (`with_raw_response`, streams)."""
    attributes: dict[str, Any] = {}
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        attributes[names.HTTP_RESPONSE_STATUS_CODE] = status
    request_id = header(response, request_id_header)
    if request_id:
        attributes[names.AITRACK_REQUEST_ID] = request_id
    return attributes


def is_http_response(result: Any) -> bool:
    """A raw response object (`with_raw_response` / `with_streaming_response`), not a parsed body."""
    return hasattr(result, "status_code") and hasattr(result, "headers") and hasattr(result, "parse")


def header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    value = headers.get(name) if headers is not None and hasattr(headers, "get") else None
    return value if isinstance(value, str) else None
