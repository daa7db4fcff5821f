"""The TraceQL queries of the dashboard: failed AI calls as Tempo stores them, one span per SDK call.

The provider's error code is only on spans (`aitrack.error.provider_code`), so the breakdown by
provider error code is a TraceQL metrics query; the recent-failures table is a TraceQL search, and so
is the latest span of each failure group (`aitrack.error.fingerprint`), whose message and trace the
Failure groups table shows beside the group's count from Prometheus.
"""

from __future__ import annotations

# `:regex` formats a multi-value selection as `(a|b)`; the "All" option sends the allValue `.*`.
_FAILED_CALL = " && ".join(
    (
        "status = error",
        'resource.service.name =~ "${service:regex}"',
        'span.gen_ai.provider.name =~ "${provider:regex}"',
        'span.gen_ai.prompt.name =~ "${prompt_type:regex}"',
    )
)
FAILED_CALL_SPANS = f"{{ {_FAILED_CALL} }}"

FAILURES_BY_PROVIDER_CODE = (
    f"{FAILED_CALL_SPANS} | count_over_time() by (span.gen_ai.prompt.name, span.aitrack.error.provider_code)"
)

RECENT_FAILED_CALL_COLUMNS = (
    "span.gen_ai.prompt.name",
    "span.error.type",
    "span.aitrack.error.provider_code",
    "span.aitrack.error.message",
    "span.http.response.status_code",
    "span.aitrack.request.id",
)
RECENT_FAILED_CALLS = f"{FAILED_CALL_SPANS} | select({', '.join(RECENT_FAILED_CALL_COLUMNS)})"

FINGERPRINT = "aitrack.error.fingerprint"
MESSAGE = "aitrack.error.message"
# Newest first (`most_recent`: Tempo otherwise returns whichever matching traces it finds first), the
# fingerprint to join on and the message to show.
LATEST_FAILURE_PER_GROUP = (
    f"{{ {_FAILED_CALL} && span.{FINGERPRINT} != nil }} | select(span.{FINGERPRINT}, span.{MESSAGE})"
    " with (most_recent=true)"
)
