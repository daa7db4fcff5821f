"""`otel-aitrack run`: the program auto-instrumented, its output, exit code and signals untouched."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import termios
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cli.support import CLI, cli_env, group_rows, one_line_error, run_cli, table_rows, wide_env
from tests.fakes.openai_server import FakeOpenAI
from tests.support import run_ok
from tests.test_failure_groups import documented

PYTHON = sys.executable
APP = textwrap.dedent(
    """
    import sys, openai, otel_aitrack
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-proj-runKEY0123456789abcdef", max_retries=0)
    messages = [{"role": "user", "content": "Summarize ticket #42"}]
    for _ in range(3):
        try:
            with otel_aitrack.track("summarize_ticket"):
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        except openai.APIStatusError as error:
            print("app saw", type(error).__name__, file=sys.stderr)
    print("app done")
    """
)


def write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_the_programs_output_exit_code_and_own_sitecustomize_pass_through(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    write(
        own,
        "sitecustomize.py",
        "import os, sys\nprint('own sitecustomize in', os.getpid(), file=sys.stderr)\n",
    )
    app = write(
        tmp_path,
        "app.py",
        "import os, sys\nprint('to stdout', os.getpid())\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n",
    )
    done = run_cli("run", "--", PYTHON, app, env=cli_env(PYTHONPATH=str(own)))
    assert done.returncode == 3
    (pid,) = re.fullmatch(r"to stdout (\d+)\n", done.stdout).groups()  # the table goes to stderr, not here
    assert f"own sitecustomize in {pid}\nto stderr\n" in done.stderr  # the program's own sitecustomize ran
    assert done.stderr.endswith(f"otel-aitrack run: app.py (pid {pid}), exit code 3: no AI calls\n")


def test_the_table_of_a_program_that_called_openai(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.reset()
    fake.plan("ok", "rate_limit", "not_found")
    app = write(tmp_path, "app.py", APP)
    done = run_cli("run", PYTHON, app, fake.base_url, env=wide_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout == "app done\n"
    assert "app saw RateLimitError" in done.stderr
    assert f"otel-aitrack run: app.py {fake.base_url} (pid " in done.stderr
    assert table_rows(done.stderr)["summarize_ticket"][:5] == ["3", "2", "66.7 %", "2", "NotFoundError"]
    # Its failure groups, as the program's stats() had them: the calls were made at the script's top.
    groups = group_rows(done.stderr)
    not_found = documented("openai", "NotFoundError", "model_not_found", "__main__", "<module>")
    assert {fingerprint: row[1] for fingerprint, row in groups.items()} == {
        not_found: "NotFoundError (model_not_found)",
        documented("openai", "RateLimitError", "rate_limit_exceeded", "__main__", "<module>"): (
            "RateLimitError (rate_limit_exceeded)"
        ),
    }
    assert groups[not_found][0] == "summarize_ticket" and groups[not_found][2] == "1"
    assert "runKEY" not in done.stderr
    # No exporter configured: none is used, so no OTLP connection errors either.
    assert "Failed to export" not in done.stderr and "Exception while exporting" not in done.stderr


def test_otel_settings_apply_to_the_program(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.reset()
    app = write(tmp_path, "app.py", APP)
    env = cli_env(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="run-under-test",
        # `openai`: the official OpenAI instrumentation (test extra) would add a span per call too.
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="httpx,openai",
    )
    done = run_ok([*CLI, "run", PYTHON, app, fake.base_url], env=env, timeout=90)
    assert done.stdout.count('"name": "chat gpt-4o-mini"') == 3  # the console exporter, in the program
    assert '"service.name": "run-under-test"' in done.stdout
    assert table_rows(done.stderr)["summarize_ticket"][:3] == ["3", "0", "0.0 %"]


# A program as a terminal starts it: Ctrl-C raises KeyboardInterrupt. (A test run started in the
# background of a shell inherits SIGINT ignored, and so would the program, as without otel-aitrack.)
INTERRUPTIBLE = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
SLEEPER = INTERRUPTIBLE + """
import sys, time, openai, otel_aitrack
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-proj-x0123456789abcdef", max_retries=0)
with otel_aitrack.track("classify_email"):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print("ready", flush=True)
time.sleep(60)
"""


def run_until_ready(tmp_path: Path, fake: FakeOpenAI) -> subprocess.Popen[str]:
    fake.reset()
    app = write(tmp_path, "sleeper.py", SLEEPER)
    process = subprocess.Popen(
        [*CLI, "run", PYTHON, app, fake.base_url],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


def signalled(process: subprocess.Popen[str], signum: int) -> str:
    """Send the signal to the running program; its stderr once it has ended (128 + the signal)."""
    try:
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 128 + signum
    return str(err)


def test_ctrl_c_reaches_the_program_and_its_table_is_printed(fake: FakeOpenAI, tmp_path: Path) -> None:
    err = signalled(run_until_ready(tmp_path, fake), signal.SIGINT)
    assert "KeyboardInterrupt" in err  # the program's own traceback, as without otel-aitrack
    assert "ended by SIGINT" in err
    assert table_rows(err)["classify_email"][:3] == ["1", "0", "0.0 %"]


def test_sigterm_reaches_the_program_and_gives_128_plus_15(fake: FakeOpenAI, tmp_path: Path) -> None:
    err = signalled(run_until_ready(tmp_path, fake), signal.SIGTERM)
    # Killed by the signal, the program could not write its figures: said in one line.
    assert one_line_error(err) == "otel-aitrack run: no figures from the program (it was ended by SIGTERM)"


# The program counts its interrupts: a second SIGINT during its cleanup would be a second traceback.
COUNTING_SLEEPER = INTERRUPTIBLE + """
import sys, time
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    time.sleep(2)  # a second SIGINT would interrupt this
    print("cleaned up", flush=True)
    sys.exit(3)
"""


@contextmanager
def in_a_terminal(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`otel-aitrack run` as a shell runs it: in the foreground process group of its own terminal (a
    pseudo-terminal whose master end the test holds)."""
    master, slave = os.openpty()

    def take_the_terminal() -> None:  # runs in the child after setsid(): the pty becomes its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    app = write(tmp_path, "counting.py", COUNTING_SLEEPER)
    process = subprocess.Popen(
        [*CLI, "run", PYTHON, app],
        env=cli_env(),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=take_the_terminal,  # noqa: PLW1509 (the test starts no thread before it)
    )
    os.close(slave)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        yield process, master
    finally:
        process.kill()
        os.close(master)


def test_ctrl_c_in_the_terminal_reaches_the_program_once(tmp_path: Path) -> None:
    with in_a_terminal(tmp_path) as (process, terminal):
        os.write(terminal, b"\x03")  # the terminal sends SIGINT to its whole foreground group
        out, err = process.communicate(timeout=30)
    assert out == "interrupted\ncleaned up\n", err
    assert process.returncode == 3


def test_a_sigint_sent_to_the_command_in_a_terminal_is_passed_on(tmp_path: Path) -> None:
    # kill -INT <pid of otel-aitrack>: only otel-aitrack gets it, even in the terminal's foreground group.
    with in_a_terminal(tmp_path) as (process, _):
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert out == "interrupted\ncleaned up\n", err
    assert process.returncode == 3


def test_an_unknown_command_exits_127_with_one_line() -> None:
    done = run_cli("run", "no-such-program-xyz", "--flag")
    assert done.returncode == 127
    assert one_line_error(done.stderr) == "otel-aitrack run: command not found: no-such-program-xyz"
