"""Failure categories: one small fixed taxonomy for every provider (`aitrack.error.category`)."""

from __future__ import annotations

from .names import Category

# OpenAI's quota codes, and Anthropic's `billing_error` (HTTP 402).
_QUOTA_CODES = frozenset(
    {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "billing_error"}
)
_CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation", "moderation_blocked"})
_STATUS_CATEGORIES = {
    400: Category.BAD_REQUEST,
    401: Category.AUTH,
    403: Category.AUTH,
    404: Category.NOT_FOUND,
    408: Category.TIMEOUT,
    409: Category.BAD_REQUEST,
    413: Category.BAD_REQUEST,
    422: Category.BAD_REQUEST,
    429: Category.RATE_LIMIT,
    # The server (or a gateway before it) gave up waiting: what helps is a longer timeout or a retry.
    504: Category.TIMEOUT,
}


# Words in the class names (the class's own or a base's) of the HTTP clients' transport errors: httpx's
# (ConnectError and ReadError are NetworkErrors, RemoteProtocolError a ProtocolError), aiohttp's
# (ClientConnectorError, ClientOSError and ServerDisconnectedError are ClientConnectionErrors;
# ClientPayloadError is a body cut mid-way), the SDKs' APIConnectionError, Python's ConnectionError.
_TRANSPORT_WORDS = ("Connection", "Connector", "Disconnected", "Payload", "Protocol", "Network", "Incomplete")


def is_transport_error(error: BaseException) -> bool:
    """The connection failed or broke (not a timeout, which is a category of its own)."""
    names = [cls.__name__ for cls in type(error).__mro__]
    return "Timeout" not in names[0] and any(word in name for name in names for word in _TRANSPORT_WORDS)


def categorize(error_type: str, status_code: int | None, provider_code: str | None) -> str:
    """The category of a failure from its class name, HTTP status and the provider's own code."""
    if provider_code in _QUOTA_CODES:
        return Category.QUOTA
    if provider_code in _CONTENT_FILTER_CODES or "ContentFilter" in error_type:
        return Category.CONTENT_FILTER
    if status_code is not None:
        if status_code in _STATUS_CATEGORIES:
            return _STATUS_CATEGORIES[status_code]
        return Category.SERVER if status_code >= 500 else Category.OTHER
    if "Timeout" in error_type or error_type == "TimeoutError":
        return Category.TIMEOUT
    if any(word in error_type for word in _TRANSPORT_WORDS):
        return Category.CONNECTION
    return Category.OTHER
