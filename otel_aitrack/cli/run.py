"""`otel-aitrack run [--] COMMAND ...`: a program auto-instrumented, then its failure table.

The program runs as a child process with `bootstrap/` first on its PYTHONPATH: that `sitecustomize`
instruments it as `opentelemetry-instrument` does (every OTEL_* setting applies) and writes its
`stats()` at exit. Its stdin, stdout and stderr are this process's own; SIGINT and SIGTERM are passed
on; the exit code is the program's (128 + N when a signal N ended it). The table goes to stderr, so
the program's stdout stays exactly its own.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from types import FrameType

from .child import STATS_DIR, ProcessStats, read_stats
from .view import FailureRow, GroupRow, failure_table, groups_table, make_console

BOOTSTRAP = Path(__file__).resolve().with_name("bootstrap")
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXPORTER_SETTINGS = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")
OTLP_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)
COMMAND_NOT_FOUND = 127
COMMAND_NOT_EXECUTABLE = 126


def main(args: argparse.Namespace) -> int:
    command: list[str] = args.command
    with tempfile.TemporaryDirectory(prefix="otel-aitrack-run-") as stats_dir:
        try:
            process = subprocess.Popen(command, env=child_environment(os.environ, stats_dir))
        except FileNotFoundError:
            _say(f"command not found: {command[0]}")
            return COMMAND_NOT_FOUND
        except PermissionError:
            hint = f" (a script? otel-aitrack run python {command[0]})" if command[0].endswith(".py") else ""
            _say(f"permission denied: {command[0]}{hint}")
            return COMMAND_NOT_EXECUTABLE
        returncode = wait_passing_signals(process)
        processes = read_stats(Path(stats_dir))
    print_report(processes, process.pid, returncode)
    return 128 - returncode if returncode < 0 else returncode


def child_environment(environ: Mapping[str, str], stats_dir: str) -> dict[str, str]:
    """The program's environment: ours, plus the bootstrap on PYTHONPATH and where to write the figures.

    Without an OTLP endpoint setting, an exporter left unset is `none` rather than the SDK's default,
    OTLP to localhost: the table needs no collector, and an absent one would only fill stderr.
    """
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(BOOTSTRAP), environ.get("PYTHONPATH"))))
    env[STATS_DIR] = stats_dir
    if not any(environ.get(name) for name in OTLP_ENDPOINTS):
        for name in EXPORTER_SETTINGS:
            env.setdefault(name, "none")
    return env


def wait_passing_signals(process: subprocess.Popen[bytes]) -> int:
    """Wait for the program, passing SIGINT and SIGTERM on; its return code (-N: ended by signal N).

    A signal someone sent to this process (`kill`, a supervisor) is passed on. A SIGINT the terminal
    sent (Ctrl-C) went to the whole foreground process group, the program included: it is not sent a
    second time. The two are told apart by the sender the kernel records (`si_code`), where the platform
    lets us read it; elsewhere by whether this process is in the terminal's foreground group.
    """
    if hasattr(signal, "sigtimedwait"):
        return _wait_reading_senders(process)
    return _wait_with_handlers(process)


# si_code of a signal the kernel itself raised (the tty's Ctrl-C); `kill()` gives SI_USER (0).
_SI_KERNEL = 0x80
_WAKE = (*FORWARDED_SIGNALS, signal.SIGCHLD)


def _wait_reading_senders(process: subprocess.Popen[bytes]) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, _WAKE)
    try:
        while (returncode := process.poll()) is None:
            received = signal.sigtimedwait(_WAKE, 0.5)
            if received is not None:
                _pass_on(process, received.si_signo, received.si_code)
        while (pending := signal.sigtimedwait(_WAKE, 0)) is not None:  # none may reach the handlers
            _pass_on(process, pending.si_signo, pending.si_code)
        return returncode
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _WAKE)


def _pass_on(process: subprocess.Popen[bytes], number: int, code: int) -> None:
    if number not in FORWARDED_SIGNALS or (number == signal.SIGINT and code == _SI_KERNEL):
        return
    with suppress(ProcessLookupError):
        process.send_signal(number)


def _wait_with_handlers(process: subprocess.Popen[bytes]) -> int:
    def pass_on(number: int, frame: FrameType | None) -> None:
        if number == signal.SIGINT and _terminal_interrupted_the_program_too():
            return
        with suppress(ProcessLookupError):
            process.send_signal(number)

    previous = {number: signal.signal(number, pass_on) for number in FORWARDED_SIGNALS}
    try:
        return process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _terminal_interrupted_the_program_too() -> bool:
    """Ctrl-C in a terminal reaches its whole foreground process group: the program already has it."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):  # no terminal (pipe, CI), or no job control
        return False


def print_report(processes: list[ProcessStats], pid: int, returncode: int) -> None:
    console = make_console(stderr=True)
    if not processes:
        why = (
            f"it was {_ending(returncode)}"
            if returncode < 0
            else "not a Python program, started with -I/-E/-S, or without otel-aitrack installed, "
            "or it ended through os._exit()"
        )
        _say(f"no figures from the program ({why})")
        return
    # The program first, then any Python processes it started (they were instrumented too).
    for entry in sorted(processes, key=lambda p: p.pid != pid):
        title = f"otel-aitrack run: {_command_line(entry.argv)} (pid {entry.pid}), {_ending(returncode)}"
        if entry.pid != pid:
            title = f"otel-aitrack run: child process {_command_line(entry.argv)} (pid {entry.pid})"
        if not entry.figures:
            console.print(f"{title}: no AI calls")
            continue
        console.print(failure_table((FailureRow.from_stats(s) for s in entry.figures.values()), title=title))
        groups = groups_table(GroupRow.all_from_stats(entry.figures.values()), "Top failure groups")
        if groups is not None:
            console.print(groups)


def _ending(returncode: int) -> str:
    if returncode < 0:
        with suppress(ValueError):
            return f"ended by {signal.Signals(-returncode).name}"
        return f"ended by signal {-returncode}"
    return f"exit code {returncode}"


def _command_line(argv: list[str]) -> str:
    """The process's `sys.argv`, its script by file name."""
    line = " ".join([Path(argv[0]).name, *argv[1:]]) if argv and argv[0] else "python"
    return line if len(line) <= 80 else line[:77] + "..."


def _say(message: str) -> None:
    print(f"otel-aitrack run: {message}", file=sys.stderr)
