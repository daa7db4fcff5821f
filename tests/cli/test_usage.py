"""`otel-aitrack --help`, each subcommand's help, and bad arguments: exit code 2 with the usage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otel_aitrack.cli import main
from otel_aitrack.version import __version__
from tests.cli.support import CLI, cli_env, run_cli
from tests.support import run_ok


def test_help_lists_the_three_subcommands() -> None:
    done = run_cli("--help")
    assert done.returncode == 0, done.stderr
    assert "usage: otel-aitrack" in done.stdout
    for subcommand in ("demo", "run", "failures"):
        assert subcommand in done.stdout


@pytest.mark.parametrize(
    ("subcommand", "expected"),
    [
        ("demo", ["--duration SECONDS", "--failure-mix", "--rate", "--seed", "until Ctrl-C"]),
        ("run", ["COMMAND", "OTEL_"]),
        ("failures", ["--prometheus URL", "--tempo URL", "--since", "--prompt-type", "--traceback"]),
    ],
)
def test_every_subcommand_has_help(subcommand: str, expected: list[str]) -> None:
    done = run_cli(subcommand, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: otel-aitrack {subcommand}" in done.stdout
    for text in expected:
        assert text in done.stdout


def test_without_a_subcommand_the_help_goes_to_stderr_with_exit_code_2() -> None:
    done = run_cli()
    assert done.returncode == 2
    assert "usage: otel-aitrack" in done.stderr


BAD_ARGUMENTS = [
    (["demo", "--duration", "-1"], "cannot be negative"),
    (["demo", "--duration", "soon"], "is not a number of seconds"),
    (["demo", "--rate", "0"], "the rate must be above 0"),
    (["demo", "--failure-mix", "flaky"], "expected NAME=PROBABILITY"),
    (["demo", "--failure-mix", "flaky=1.5"], "between 0 and 1"),
    (["demo", "--failure-mix", "flaky=0.2,classify_email=0.3"], "appears twice"),
    (["demo", "--failure-mix", "bad name=0.3"], "is not a prompt type name"),
    (["demo", "--seed", "x"], "invalid int value"),
    (["demo", "--colour"], "unrecognized arguments: --colour"),
    (["run"], "give the command to run"),
    (["run", "--"], "give the command to run"),
    (["failures"], "the following arguments are required: --prometheus"),
    (["failures", "--prometheus", "localhost:9090"], "is not an http(s) base URL"),
    (["failures", "--prometheus", "http://p:9090", "--since", "15"], "is not a duration"),
    (["failures", "--prometheus", "http://p:9090", "--limit", "0"], "must be 1 or more"),
    (["failures", "--prometheus", "http://p:9090", "--prompt-type", 'a"b'], "is not a prompt type name"),
    (["failures", "--prometheus", "http://p:9090", "--traceback"], "--traceback needs --tempo"),
]


@pytest.mark.parametrize("subcommand", ["demo", "run", "failures"])
def test_bad_arguments_exit_2_with_the_subcommands_usage(subcommand: str) -> None:
    args, message = next((args, message) for args, message in BAD_ARGUMENTS if args[0] == subcommand)
    done = run_cli(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"usage: otel-aitrack {subcommand}")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_every_bad_argument_is_refused_with_its_reason(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same parser in this process: a subprocess each would only make the suite slower.
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: otel-aitrack {args[0]}")
    assert f"otel-aitrack {args[0]}: error: " in err and message in err


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("otel-aitrack")
    assert script.exists(), "reinstall the package (pip install -e '.[test]') to get the console script"
    done = run_ok([str(script), "--version"], env=cli_env(), timeout=60)
    assert done.stdout.strip() == f"otel-aitrack {__version__}"


# Without the `cli` extra: `rich` absent (made unimportable), help still works, a subcommand says
# how to install what it needs.
WITHOUT_RICH = (
    "import sys; sys.modules['rich'] = None; from otel_aitrack.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_help_needs_nothing_but_the_package() -> None:
    done = run_ok([sys.executable, "-c", WITHOUT_RICH, "demo", "--help"], env=cli_env(), timeout=60)
    assert "usage: otel-aitrack demo" in done.stdout


@pytest.mark.parametrize("args", [["demo", "--duration", "1"], ["failures", "--prometheus", "http://p:9"]])
def test_without_rich_a_subcommand_says_how_to_install_it(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_RICH, *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"otel-aitrack {args[0]}: rich is not installed: pip install 'otel-aitrack[cli]'"
    )


def test_module_and_console_script_are_the_same_command() -> None:
    assert CLI[1:] == ["-m", "otel_aitrack.cli"]
    assert "otel_aitrack.cli:main" in (Path(__file__).parents[2] / "pyproject.toml").read_text()
