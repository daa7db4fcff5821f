"""HTTP facts every provider reads the same way: the server of a base URL, a response's status and headers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .. import names
from .base import ErrorDetails

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


def parse_hooks(base_client_module: str) -> tuple[tuple[str, str], ...]:
    """The response parsers of a Stainless SDK (openai, anthropic), sync and async: each is handed the
    HTTP response of a call as `response=`, after the retries, before the body is parsed."""
    clients = ("SyncAPIClient", "AsyncAPIClient")
    return tuple((base_client_module, f"{client}._process_response") for client in clients)


def is_http_response(result: Any) -> bool:
    """A raw response object (`with_raw_response` / `with_streaming_response`), not a parsed body."""
    cls = type(result)
    known = _HTTP_RESPONSE_CLASSES.get(cls)
    if known is None:
        # Looked up on the class, once per class: a miss on a pydantic body costs microseconds per call.
        known = _HTTP_RESPONSE_CLASSES[cls] = all(hasattr(cls, name) for name in _HTTP_RESPONSE_MEMBERS)
    return known


_HTTP_RESPONSE_MEMBERS = ("status_code", "headers", "parse")
_HTTP_RESPONSE_CLASSES: dict[type, bool] = {}


def header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    value = headers.get(name) if headers is not None and hasattr(headers, "get") else None
    return value if isinstance(value, str) else None


def attribute(obj: object, name: str) -> Any:
    """`getattr(obj, name, None)`, also when reading it raises: an exception's properties are the
    application's (or a proxy's) code, and an unreadable one leaves out that detail only."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def status_error_details(
    error: BaseException,
    request_id_header: str,
    code: str | None,
    category: Callable[[BaseException | None, str, int | None, str | None], str],
) -> ErrorDetails:
    """HTTP status, provider code, request id and category of an SDK exception.

    Both SDKs put `status_code` and `request_id` on their status errors; an error without them (a
    connection failure) may still carry a `response` whose header has the id.
    """
    status = attribute(error, "status_code")
    status = status if isinstance(status, int) else None
    request_id = attribute(error, "request_id")
    if not isinstance(request_id, str):
        request_id = header(attribute(error, "response"), request_id_header)
    return ErrorDetails(status, code, request_id, category(error, type(error).__name__, status, code))
