"""Inside a program started by `otel-aitrack run`: auto-instrumentation, and its figures written at exit.

`bootstrap/sitecustomize.py` (on the program's PYTHONPATH) calls `start()` as Python starts. The
figures of `otel_aitrack.stats()` go to `<OTEL_AITRACK_RUN_STATS_DIR>/<pid>.json` when the program
exits normally (return, `sys.exit`, an uncaught exception, Ctrl-C), so the CLI can print its table.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from opentelemetry.instrumentation.auto_instrumentation import initialize

from ..book import FailureGroup, PromptStats, stats

STATS_DIR = "OTEL_AITRACK_RUN_STATS_DIR"


@dataclass(frozen=True)
class ProcessStats:
    """The figures one process wrote at exit."""

    pid: int
    argv: list[str]
    figures: dict[str, PromptStats]  # by prompt type


def start() -> None:
    """Register the figures' writer, then instrument the way `opentelemetry-instrument` does."""
    directory = os.environ.get(STATS_DIR)
    if directory:
        atexit.register(write_stats, Path(directory))
    initialize()


def write_stats(directory: Path) -> None:
    figures = [_jsonable(s.as_dict()) for s in stats().values()]
    payload = {"pid": os.getpid(), "argv": sys.argv, "stats": figures}
    target = directory / f"{os.getpid()}.json"
    partial = target.with_suffix(".partial")
    try:
        partial.write_text(json.dumps(payload))
        partial.replace(target)
    except OSError:
        pass  # the CLI's directory is gone (it was killed): nobody is left to read the figures


def read_stats(directory: Path) -> list[ProcessStats]:
    """What every process of the run wrote, by process id."""
    found = []
    for path in sorted(directory.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
        try:
            payload = json.loads(path.read_text())
            figures = {entry["prompt_type"]: PromptStats(**_fields(entry)) for entry in payload["stats"]}
            found.append(ProcessStats(int(payload["pid"]), list(payload["argv"]), figures))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a process that wrote something else under our name is not ours to report
    return found


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


_TIMES = ("last_failed_at", "first_seen", "last_seen")


def _fields(entry: dict[str, Any]) -> dict[str, Any]:
    """A PromptStats' fields from what `write_stats` wrote (its failure groups made again too)."""
    fields = _dataclass_fields(entry, PromptStats)
    groups = fields.get("failure_groups") or []
    fields["failure_groups"] = tuple(FailureGroup(**_dataclass_fields(g, FailureGroup)) for g in groups)
    return fields


def _dataclass_fields(entry: dict[str, Any], of: type[Any]) -> dict[str, Any]:
    """The fields of dataclass `of` in `entry`, its times parsed back from ISO 8601."""
    fields = {name: entry.get(name) for name in of.__dataclass_fields__}
    for name in _TIMES:
        if fields.get(name):
            fields[name] = datetime.fromisoformat(str(fields[name]))
    return fields
