"""Every telemetry name otel-aitrack emits: the product's public API.

Dashboards, alert rules, the CLI and users' own queries read these names; change one only through an
issue, and keep docs/telemetry.md in step.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.attributes import user_attributes as _user
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import exception_attributes as _exception
from opentelemetry.semconv.attributes import http_attributes as _http
from opentelemetry.semconv.attributes import server_attributes as _server

# --- Semantic-convention names, imported from opentelemetry-semantic-conventions (never retyped) ---
GEN_AI_OPERATION_NAME: Final = _gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME: Final = _gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_REQUEST_MODEL: Final = _gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_STREAM: Final = _gen_ai.GEN_AI_REQUEST_STREAM
GEN_AI_RESPONSE_MODEL: Final = _gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_RESPONSE_ID: Final = _gen_ai.GEN_AI_RESPONSE_ID
GEN_AI_RESPONSE_FINISH_REASONS: Final = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = _gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
GEN_AI_USAGE_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
GEN_AI_TOKEN_TYPE: Final = _gen_ai.GEN_AI_TOKEN_TYPE
GEN_AI_PROMPT_NAME: Final = _gen_ai.GEN_AI_PROMPT_NAME
GEN_AI_CONVERSATION_ID: Final = _gen_ai.GEN_AI_CONVERSATION_ID
GEN_AI_INPUT_MESSAGES: Final = _gen_ai.GEN_AI_INPUT_MESSAGES
GEN_AI_OUTPUT_MESSAGES: Final = _gen_ai.GEN_AI_OUTPUT_MESSAGES
GEN_AI_SYSTEM_INSTRUCTIONS: Final = _gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS

SERVER_ADDRESS: Final = _server.SERVER_ADDRESS
SERVER_PORT: Final = _server.SERVER_PORT
ERROR_TYPE: Final = _error.ERROR_TYPE
HTTP_RESPONSE_STATUS_CODE: Final = _http.HTTP_RESPONSE_STATUS_CODE
HTTP_REQUEST_RESEND_COUNT: Final = _http.HTTP_REQUEST_RESEND_COUNT
USER_ID: Final = _user.USER_ID
EXCEPTION_TYPE: Final = _exception.EXCEPTION_TYPE
EXCEPTION_MESSAGE: Final = _exception.EXCEPTION_MESSAGE
EXCEPTION_STACKTRACE: Final = _exception.EXCEPTION_STACKTRACE

# Event names: the span event of the exception conventions; the GenAI conventions' log events (not in
# the pinned package yet: written here, from the conventions' GenAI events and exceptions pages).
EXCEPTION_EVENT: Final = "exception"
EVENT_OPERATION_EXCEPTION: Final = "gen_ai.client.operation.exception"
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"

# --- otel-aitrack span attributes ---------------------------------------------------------------
AITRACK_TASK: Final = "aitrack.task"
AITRACK_ERROR_MESSAGE: Final = "aitrack.error.message"
AITRACK_ERROR_TRACEBACK: Final = "aitrack.error.traceback"
AITRACK_ERROR_PROVIDER_CODE: Final = "aitrack.error.provider_code"
AITRACK_ERROR_CATEGORY: Final = "aitrack.error.category"
AITRACK_ERROR_FINGERPRINT: Final = "aitrack.error.fingerprint"
AITRACK_REQUEST_ID: Final = "aitrack.request.id"
AITRACK_STREAM_OUTCOME: Final = "aitrack.stream.outcome"
AITRACK_CALL_CANCELLED: Final = "aitrack.call.cancelled"

# --- Metric instruments -------------------------------------------------------------------------
METRIC_CALLS: Final = "aitrack.calls"
METRIC_CONSECUTIVE_FAILURES: Final = "aitrack.consecutive_failures"
METRIC_LAST_FAILURE_TIMESTAMP: Final = "aitrack.last_failure.timestamp"
METRIC_INSTRUMENTATION_ERRORS: Final = "aitrack.instrumentation.errors"
METRIC_OPERATION_DURATION: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
METRIC_TOKEN_USAGE: Final = _gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
METRIC_TIME_TO_FIRST_CHUNK: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
METRIC_TIME_PER_OUTPUT_CHUNK: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK

# --- Values -------------------------------------------------------------------------------------
DEFAULT_PROMPT_TYPE: Final = "untracked"
OVERFLOW_PROMPT_TYPE: Final = "_overflow"
OVERFLOW_FINGERPRINT: Final = "_overflow"  # the fingerprints past the limit of a prompt type


class ProviderName:
    """Well-known `gen_ai.provider.name` values (the GenAI semantic conventions' registry) detected here."""

    OPENAI: Final = "openai"
    ANTHROPIC: Final = "anthropic"
    AZURE_AI_OPENAI: Final = "azure.ai.openai"
    AZURE_AI_INFERENCE: Final = "azure.ai.inference"
    AWS_BEDROCK: Final = "aws.bedrock"
    GCP_GEMINI: Final = "gcp.gemini"
    GCP_VERTEX_AI: Final = "gcp.vertex_ai"
    GCP_GEN_AI: Final = "gcp.gen_ai"  # any Google generative AI endpoint, when it cannot tell which
    COHERE: Final = "cohere"
    DEEPSEEK: Final = "deepseek"
    GROQ: Final = "groq"
    MISTRAL_AI: Final = "mistral_ai"
    MOONSHOT_AI: Final = "moonshot_ai"
    PERPLEXITY: Final = "perplexity"
    X_AI: Final = "x_ai"


class Category:
    """The fixed failure taxonomy of `aitrack.error.category`."""

    RATE_LIMIT: Final = "rate_limit"
    QUOTA: Final = "quota"
    AUTH: Final = "auth"
    NOT_FOUND: Final = "not_found"
    BAD_REQUEST: Final = "bad_request"
    TIMEOUT: Final = "timeout"
    CONNECTION: Final = "connection"
    SERVER: Final = "server"
    CONTENT_FILTER: Final = "content_filter"
    STREAM_TRUNCATED: Final = "stream_truncated"
    OTHER: Final = "other"


class StreamOutcome:
    """Values of `aitrack.stream.outcome`."""

    COMPLETED: Final = "completed"
    ABORTED: Final = "aborted"
    TRUNCATED: Final = "truncated"
    ERROR: Final = "error"


# `error.type` of a stream that ended without its terminal marker (no exception exists to name).
STREAM_TRUNCATED_ERROR_TYPE: Final = "stream_truncated"
