"""Every telemetry name otel-aitrack emits: the product's public API.

Dashboards, alert rules, the CLI and users' own queries read these names; change one only through an
issue, and keep docs/telemetry.md in step.
"""

from __future__ import annotations

from typing import Final

# --- GenAI semantic-convention attributes -------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"

# --- General semantic-convention attributes -----------------------------------------------------
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"
USER_ID: Final = "user.id"
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# --- otel-aitrack span attributes ---------------------------------------------------------------
AITRACK_TASK: Final = "aitrack.task"
AITRACK_ERROR_MESSAGE: Final = "aitrack.error.message"
AITRACK_ERROR_TRACEBACK: Final = "aitrack.error.traceback"
AITRACK_ERROR_PROVIDER_CODE: Final = "aitrack.error.provider_code"
AITRACK_ERROR_CATEGORY: Final = "aitrack.error.category"
AITRACK_REQUEST_ID: Final = "aitrack.request.id"
AITRACK_STREAM_OUTCOME: Final = "aitrack.stream.outcome"
AITRACK_CALL_CANCELLED: Final = "aitrack.call.cancelled"

# --- Metric instruments -------------------------------------------------------------------------
METRIC_CALLS: Final = "aitrack.calls"
METRIC_CONSECUTIVE_FAILURES: Final = "aitrack.consecutive_failures"
METRIC_LAST_FAILURE_TIMESTAMP: Final = "aitrack.last_failure.timestamp"
METRIC_INSTRUMENTATION_ERRORS: Final = "aitrack.instrumentation.errors"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"

# --- Values -------------------------------------------------------------------------------------
DEFAULT_PROMPT_TYPE: Final = "untracked"
OVERFLOW_PROMPT_TYPE: Final = "_overflow"


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
