"""The fingerprint of a failure: which kind of failure, from which place in the application's code.

`aitrack.error.fingerprint` groups failed calls the way an error tracker groups events into issues: the
same failure from the same place has the same fingerprint in every process, on every machine, in every
release and Python version, and a new kind of failure (another error type or provider code, or the same
one from another function) gets a new one. It is a hash of, and only of:

1. the provider (`gen_ai.provider.name`),
2. `error.type`,
3. the provider's error code (`aitrack.error.provider_code`, empty when there is none),
4. the application's frame that made the call: its module (`__name__`) and function (qualified name),

never a line number, a message, an id or a time, which change with every release or every call. The
recipe (versioned, so that a change of it is a new set of groups, never a silent regrouping):

    sha256("aitrack-fingerprint-v1\\n{provider}\\n{error.type}\\n{provider code}\\n{module}\\n{function}")

in UTF-8, its first 16 hexadecimal digits.
"""

from __future__ import annotations

import hashlib
from types import CodeType, FrameType

from .tracebacks import is_instrumentation

RECIPE = "aitrack-fingerprint-v1"
LENGTH = 16  # hex digits: 64 bits, no collision to expect among a fleet's distinct failures
UNKNOWN_ORIGIN = ("", "")  # no application frame (a call made from a thread's top, or C code)

# Modules whose frames are plumbing between the application and the HTTP request, never the
# application's own: the provider SDKs, their HTTP clients, other instrumentations wrapping the same
# methods, and the standard library's machinery a call passes through (wrapping, async loops, executors).
_PLUMBING = (
    "opentelemetry",
    "openinference",
    "traceloop",
    "openai",
    "anthropic",
    "google.genai",
    "google.auth",
    "google.api_core",
    "boto3",
    "botocore",
    "httpx",
    "httpcore",
    "aiohttp",
    "anyio",
    "sniffio",
    "wrapt",
    "asyncio",
    "concurrent.futures",
    "contextlib",
    "functools",
    "threading",
)
# Comprehensions that Python 3.12+ inlines into their function (PEP 709) but 3.11 runs as their own
# code: left out of the function's name, so a call from one has the same fingerprint on every version.
_INLINED = (".<locals>.<listcomp>", ".<locals>.<dictcomp>", ".<locals>.<setcomp>")
_MODULE_LEVEL_INLINED = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>"})
# Module name -> whether it is plumbing; the modules of a process are few, so it stays small.
_PLUMBING_SEEN: dict[str, bool] = {}


def fingerprint(provider: str, error_type: str, provider_code: str | None, origin: tuple[str, str]) -> str:
    """The failure's fingerprint, by the recipe above. `origin`: (module, function) of `call_origin`."""
    module, function = origin
    text = "\n".join((RECIPE, provider, error_type, provider_code or "", module, function))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:LENGTH]


def call_origin(frame: FrameType | None) -> tuple[str, str]:
    """(module, function) of the first application frame at or above `frame`: past the SDKs, their
    HTTP clients, otel-aitrack and the standard library's plumbing. About a microsecond: it runs at
    the start of every call (a stream may fail far from where it was made)."""
    while frame is not None:
        code = frame.f_code
        if not is_instrumentation(code.co_filename):
            module = frame.f_globals.get("__name__")
            module = module if isinstance(module, str) else ""
            plumbing = _PLUMBING_SEEN.get(module)
            if plumbing is None:
                plumbing = _PLUMBING_SEEN[module] = _is_plumbing(module)
            if not plumbing:
                return module, function_name(code)
        frame = frame.f_back
    return UNKNOWN_ORIGIN


def function_name(code: CodeType) -> str:
    """The function's qualified name (`Summarizer.run`, `handle.<locals>.retry`), the same on every
    Python version: a comprehension inlined since 3.12 is named by its function, on 3.11 too."""
    name = getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+
    if name in _MODULE_LEVEL_INLINED:
        return "<module>"
    for suffix in _INLINED:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_plumbing(module: str) -> bool:
    return any(module == package or module.startswith(package + ".") for package in _PLUMBING)
