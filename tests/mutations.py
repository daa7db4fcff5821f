"""Mutation checks: each one breaks one behaviour the suite says it tests, in a copy of the package, and
runs the tests that must then fail. A mutant that survives is an assertion the suite lost.

    python -m tests.mutations              # every mutant (a few minutes)
    python -m tests.mutations --list       # their names and what each breaks
    python -m tests.mutations NAME ...     # only these

Exit status 1 when a mutant survives, or when a mutation no longer applies (the code it names moved:
the table below must follow it). The unmutated copy runs first; it must pass.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_COPIED = ("otel_aitrack", "tests", "pyproject.toml")


@dataclass(frozen=True)
class Mutation:
    name: str
    breaks: str  # the behaviour, as a user would miss it
    path: str  # under otel_aitrack/
    old: str  # must occur exactly once
    new: str
    tests: tuple[str, ...]  # pytest arguments: what must catch it


_CONFORMANCE = "tests/conformance"
MUTATIONS = (
    Mutation(
        "status-categories-ignored",
        "a 404 / 429 / 401 is categorised by its class name only",
        "errors.py",
        "        if status_code in _STATUS_CATEGORIES:",
        "        if False:",
        (f"{_CONFORMANCE}/test_calls.py",),
    ),
    Mutation(
        "error-type-not-the-class",
        "error.type is not the exception's class name",
        "call.py",
        "ending.error_type = ending.details.error_type or error_type",
        'ending.error_type = "Exception"',
        (f"{_CONFORMANCE}/test_calls.py",),
    ),
    Mutation(
        "traceback-dropped",
        "a failure carries no traceback",
        "call.py",
        "ending.stack = full_traceback(error, call_site, limit, self.runtime.redactor, text)",
        'ending.stack = ""',
        (f"{_CONFORMANCE}/test_calls.py",),
    ),
    Mutation(
        "success-status-dropped",
        "a parsed success keeps no http.response.status_code",
        "call.py",
        "        self._answer = response",
        "        pass",
        (f"{_CONFORMANCE}/test_calls.py",),
    ),
    Mutation(
        "stream-request-id-dropped",
        "a stream's request id (from its response header) is lost",
        "providers/http.py",
        "    request_id = header(response, request_id_header)",
        "    request_id = None",
        (f"{_CONFORMANCE}/test_streams.py",),
    ),
    Mutation(
        "resend-count-dropped",
        "retries are not counted on the span",
        "call.py",
        "            self.span.set_attribute(names.HTTP_REQUEST_RESEND_COUNT, self.attempts)",
        "            pass",
        (f"{_CONFORMANCE}/test_retries.py",),
    ),
    Mutation(
        "truncated-stream-succeeds",
        "a stream cut before its end marker counts as a success",
        "streams.py",
        "        else:\n            self.call.truncated(details)",
        "        else:\n            self.call.succeeded(details, StreamOutcome.COMPLETED)",
        (f"{_CONFORMANCE}/test_streams.py",),
    ),
    Mutation(
        "aborted-stream-completed",
        "breaking out of a stream is recorded as completed",
        "streams.py",
        "            self.call.succeeded(state.details(), StreamOutcome.ABORTED)",
        "            self.call.succeeded(state.details(), StreamOutcome.COMPLETED)",
        (f"{_CONFORMANCE}/test_streams.py",),
    ),
    Mutation(
        "stream-error-event-succeeds",
        "an error event that ends a stream counts as a success",
        "streams.py",
        "            self.call.stream_error(state.error, details)\n        elif state.terminal:",
        "            self.call.succeeded(details)\n        elif state.terminal:",
        ("tests/test_openai_streams.py",),  # the Responses API's error events end a stream, raising nothing
    ),
    Mutation(
        "consecutive-not-reset",
        "a success does not reset the consecutive failures",
        "book.py",
        "            figures.consecutive = 0\n            return key",
        "            return key",
        (f"{_CONFORMANCE}/test_figures.py",),
    ),
    Mutation(
        "anthropic-stream-error-uncategorised",
        "Anthropic's overloaded_error event inside a stream is category other",
        "providers/anthropic.py",
        "        return _ERROR_TYPE_CATEGORIES[code]",
        "        return category",
        (f"{_CONFORMANCE}/test_streams.py", "-k", "anthropic"),
    ),
    Mutation(
        "bedrock-request-id-dropped",
        "Bedrock's x-amzn-RequestId is lost",
        "providers/bedrock.py",
        "def _request_id(metadata: Mapping[str, Any]) -> str | None:\n",
        "def _request_id(metadata: Mapping[str, Any]) -> str | None:\n    return None\n",
        (_CONFORMANCE, "-k", "bedrock"),
    ),
    Mutation(
        "google-response-id-not-request-id",
        "Google's responseId (its one id) is not the request id",
        "providers/google.py",
        "        attributes[names.AITRACK_REQUEST_ID] = response_id",
        "        pass",
        (_CONFORMANCE, "-k", "google"),
    ),
    Mutation(
        "handoff-unbounded",
        "a forked child whose OTel SDK is stuck keeps every histogram measurement: memory without end",
        "handoff.py",
        "        if waiting >= self.limit:",
        "        if False:",
        ("tests/test_handoff.py", "tests/test_forks.py"),
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for mutation in MUTATIONS:
            print(f"{mutation.name:40} {mutation.breaks}")
        return 0
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    with tempfile.TemporaryDirectory(prefix="aitrack-mutants-") as scratch:
        copy = Path(scratch)
        for name in _COPIED:
            source = ROOT / name
            target = copy / name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target)
        if not _imports_the_copy(copy):
            print(f"python -m pytest in {copy} does not import its copy of otel_aitrack")
            return 1
        baseline = sorted({arg for m in chosen for arg in m.tests if arg.startswith("tests")})
        if _pytest(copy, tuple(baseline)) != 0:
            print("the unmutated copy fails its tests: nothing to learn from mutants")
            return 1
        results = [_run(copy, mutation) for mutation in chosen]
    survived = [name for name, verdict in results if verdict != "caught"]
    print(f"\n{len(results) - len(survived)} of {len(results)} mutants caught")
    for name, verdict in results:
        if verdict != "caught":
            print(f"  {name}: {verdict}")
    return 1 if survived else 0


def _run(copy: Path, mutation: Mutation) -> tuple[str, str]:
    path = copy / "otel_aitrack" / mutation.path
    original = path.read_text()
    if original.count(mutation.old) != 1:
        print(f"{mutation.name:40} DOES NOT APPLY ({mutation.path} changed)")
        return mutation.name, "does not apply: its code moved"
    path.write_text(original.replace(mutation.old, mutation.new))
    try:
        code = _pytest(copy, mutation.tests)
    finally:
        path.write_text(original)
    verdict = "caught" if code == 1 else ("SURVIVED" if code == 0 else f"pytest exited {code}")
    print(f"{mutation.name:40} {verdict}")
    return mutation.name, verdict


def _imports_the_copy(copy: Path) -> bool:
    probe = [sys.executable, "-c", "import otel_aitrack; print(otel_aitrack.__file__)"]
    found = subprocess.run(probe, cwd=copy, env=_env(copy), capture_output=True, text=True, check=False)
    return found.stdout.strip().startswith(str(copy))


def _env(copy: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}


def _pytest(copy: Path, tests: tuple[str, ...]) -> int:
    """The copy's tests on the copy's package (first on the path), quietly; pytest's exit code."""
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    ran = subprocess.run(command, cwd=copy, env=_env(copy), stdout=subprocess.DEVNULL, check=False)
    return ran.returncode


if __name__ == "__main__":
    sys.exit(main())
