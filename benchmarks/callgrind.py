"""Counting instructions with valgrind's callgrind over windows that a Python process opens and closes.

The window is callgrind's *instrumentation* state, switched by client requests (a few special
instructions valgrind recognises; the C macros of valgrind/callgrind.h, compiled here once into a small
shared library and called through ctypes). The instrumentation state is global, so what every thread
runs inside a window is counted: the batch span processor's thread and otel-aitrack's hand-off thread
included. (The *collection* state, toggled by `CALLGRIND_TOGGLE_COLLECT` with `--collect-atstart=no`,
is kept per thread: a window made with it misses the background threads' work, half of it in a
two-thread check.) With `--instr-atstart=no`, what runs outside the windows (start-up, imports,
warm-up) runs uninstrumented, at a fraction of callgrind's slowdown, and is never counted.

After each window the process asks callgrind to dump its counts (`CALLGRIND_DUMP_STATS_AT(label)`),
which also zeroes them: one file per window, whose `totals:` line is the instructions executed in it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

_SOURCE = """
#include <valgrind/callgrind.h>
void window_open(void) { CALLGRIND_START_INSTRUMENTATION; }
void window_close(const char *label) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(label); }
int on_valgrind(void) { return RUNNING_ON_VALGRIND; }
"""
_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "otel-aitrack" / "benchmarks"
_TRIGGER = re.compile(r"^desc: Trigger: Client Request: (.*)$", re.MULTILINE)
_TOTALS = re.compile(r"^totals: (\d+)", re.MULTILINE)


def requests_library() -> Path:
    """The client requests' shared library, compiled once per source (needs gcc and valgrind's headers)."""
    target = _CACHE / f"callgrind-requests-{hashlib.sha256(_SOURCE.encode()).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("a C compiler is needed to build the callgrind client requests (cc or gcc)")
    _CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "requests.c"
        source.write_text(_SOURCE)
        built = Path(work) / target.name
        subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(built), str(source)], check=True)
        os.replace(built, target)  # atomic: a concurrent run sees the old file or the whole new one
    return target


class Windows:
    """The client requests, from inside the measured process."""

    def __init__(self, library: str | Path) -> None:
        self._library = ctypes.CDLL(str(library))
        self._library.window_close.argtypes = [ctypes.c_char_p]
        if not self._library.on_valgrind():
            raise RuntimeError("not running under valgrind: nothing would be counted")

    def open(self) -> None:
        self._library.window_open()

    def close(self, label: str) -> None:
        self._library.window_close(label.encode())


def command(output_directory: Path, program: Sequence[str]) -> list[str]:
    """`program` under callgrind, uninstrumented but for its windows, one dump file per window."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is needed for --instructions")
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={output_directory / 'callgrind.%p'}",
        "--quiet",
        *program,
    ]


def window_counts(output_directory: Path) -> dict[str, int]:
    """The instructions counted in each window, by the label it was closed with."""
    counts = {}
    for dump in output_directory.glob("callgrind.*"):
        text = dump.read_text(errors="replace")
        trigger, totals = _TRIGGER.search(text), _TOTALS.search(text)
        if trigger is not None and totals is not None:
            counts[trigger.group(1)] = int(totals.group(1))
    return counts
