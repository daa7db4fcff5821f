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
}


def categorize(error_type: str, status_code: int | None, provider_code: str | None) -> str:
    """The category of a failure from its class name, HTTP status and the provider's own code."""
    if provider_code in _QUOTA_CODES:
        return Category.QUOTA
    if provider_code in _CONTENT_FILTER_CODES or "ContentFilter" in error_type:
        return Category.CONTENT_FILTER
    if status_code is not None:
        if status_code >= 500:
            return Category.SERVER
        return _STATUS_CATEGORIES.get(status_code, Category.OTHER)
    if "Timeout" in error_type or error_type == "TimeoutError":
        return Category.TIMEOUT
    if "Connection" in error_type or "Protocol" in error_type or "Network" in error_type:
        return Category.CONNECTION
    return Category.OTHER
