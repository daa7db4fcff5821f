"""The `otel-aitrack` command: the failure view with no services (`demo`, `run`) and incident queries.

    otel-aitrack demo                      # fake provider + real openai SDK + live failure table
    otel-aitrack run -- python app.py      # your program, auto-instrumented; its table when it exits
    otel-aitrack failures --prometheus http://localhost:9090 --tempo http://localhost:3200

Exit codes: 0 done (an empty window too); 1 a backend unreachable or in error, or the `cli` extra
missing; 2 bad arguments; 130 a second Ctrl-C; `run` returns the program's own code (128 + N when
signal N ended it). The subcommands import rich, openai and the SDK only when they run, so `--help`
needs nothing but the package. docs/cli.md is the user guide.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
from collections.abc import Sequence

from ..version import __version__
from . import options

__all__ = ["main"]

INSTALL_HINT = "pip install 'otel-aitrack[cli]'"
# What the `cli` extra brings (module: distribution); a subcommand missing one says how to install it.
_CLI_EXTRA = {
    "rich": "rich",
    "openai": "openai",
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.exporter": "opentelemetry-exporter-otlp-proto-http",
}
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.subcommand is None:
        parser.print_help(sys.stderr)
        return 2
    if unknown:
        args.subparser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _check(args)
    try:
        module = importlib.import_module(f"{__name__}.{args.subcommand}")
        return int(module.main(args))
    except ModuleNotFoundError as error:
        return _missing(error, args.subcommand)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # `otel-aitrack demo | head`: the reader is gone. No traceback, and none again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-aitrack",
        description=_wrap(
            "Failure observability for AI provider calls: a demo with no services, your program "
            "with its failure table, and the incident view of the Prometheus/Tempo stack."
        ),
        # Only what the installed package has: a wheel user has no docs/ folder to be sent to.
        epilog="Each subcommand has --help, with examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(dest="subcommand", metavar="{demo,run,failures}")
    _add_demo(subcommands)
    _add_run(subcommands)
    _add_failures(subcommands)
    return parser


def _add_demo(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subcommands.add_parser(
        "demo",
        help="fake OpenAI provider + realistic workload through the real openai SDK, with a live table",
        description=_wrap(
            "Start a fake OpenAI-compatible provider on 127.0.0.1, instrument the openai SDK and "
            "drive a workload across prompt types (one healthy, one flaky, one failing every call), showing "
            "otel_aitrack.stats() live; at the end, the latest failure's traceback. With "
            "OTEL_EXPORTER_OTLP_ENDPOINT set, spans and metrics are also exported over OTLP/HTTP."
        ),
        epilog="Ctrl-C (or SIGTERM) stops cleanly with the final table. Examples:\n"
        "  otel-aitrack demo --duration 10\n"
        "  otel-aitrack demo --failure-mix flaky=0.8,broken=0 --rate 10 --seed 7\n"
        "  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 otel-aitrack demo --duration 0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.set_defaults(subparser=demo)
    demo.add_argument(
        "--duration",
        type=options.seconds,
        default=20.0,
        metavar="SECONDS",
        help="how long to run (default: 20; 0 runs until Ctrl-C)",
    )
    demo.add_argument(
        "--failure-mix",
        type=lambda text: options.failure_mix(text, options.DEMO_ROLES),
        default=options.DEMO_FAILURE_MIX,
        metavar="NAME=P,...",
        help="prompt types and the probability that a call fails (0..1 or a percentage); healthy, flaky "
        f"and broken name the built-in ones (default: {options.DEMO_FAILURE_MIX})",
    )
    demo.add_argument(
        "--rate",
        type=options.calls_per_second,
        default=4.0,
        metavar="CALLS_PER_S",
        help="calls started per second, all prompt types together (default: 4)",
    )
    demo.add_argument("--seed", type=int, default=None, metavar="N", help="replay the same sequence of calls")


def _add_run(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subcommands.add_parser(
        "run",
        usage="%(prog)s [-h] [--] COMMAND ...",
        help="run a Python program auto-instrumented and print its failure table when it exits",
        description=_wrap(
            "Run COMMAND with otel-aitrack (and every installed instrumentation) loaded as "
            "opentelemetry-instrument does, honouring the OTEL_* settings; when it exits, print the failure "
            "table of its AI calls on stderr. Its output, exit code and signals pass through."
        ),
        epilog="Without an OTEL_EXPORTER_OTLP_*ENDPOINT, an exporter you leave unset\n"
        "(OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER) is none. Examples:\n"
        "  otel-aitrack run python app.py\n"
        "  OTEL_SERVICE_NAME=support-bot OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \\\n"
        "    otel-aitrack run -- python -m myapp --port 8000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(subparser=run)
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND ...", help="the program to run")


def _add_failures(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    failures = subcommands.add_parser(
        "failures",
        help="incident view: failing prompt types from Prometheus, their latest failed calls from Tempo",
        description=_wrap(
            "Prompt types ranked by failure rate and failed calls over the window, with their "
            "consecutive failures, last error code and last failure time (the dashboard's PromQL); with "
            "--tempo, the latest failed calls of each failing prompt type from a TraceQL search."
        ),
        epilog="Exit code 1 when a backend is unreachable or answers an error; 0 for an empty window. "
        "Example:\n"
        "  otel-aitrack failures --prometheus http://localhost:9090 --tempo http://localhost:3200 \\\n"
        "    --since 1h --prompt-type classify_email --traceback",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    failures.set_defaults(subparser=failures)
    failures.add_argument(
        "--prometheus", type=options.http_url, required=True, metavar="URL", help="Prometheus base URL"
    )
    failures.add_argument(
        "--tempo",
        type=options.http_url,
        metavar="URL",
        help="Tempo base URL: also list the latest failed calls",
    )
    failures.add_argument(
        "--since",
        type=options.window,
        default=options.window(options.INCIDENT_WINDOW),
        metavar="DURATION",
        help=f"the window, as in PromQL: 30m, 2h, 1d (default: {options.INCIDENT_WINDOW}, the alerts')",
    )
    failures.add_argument(
        "--prompt-type", type=options.prompt_type, metavar="NAME", help="only this prompt type"
    )
    failures.add_argument(
        "--traceback", action="store_true", help="print each failed call's traceback (--tempo)"
    )
    failures.add_argument(
        "--limit",
        type=options.positive_int,
        default=5,
        metavar="N",
        help="failed calls listed per prompt type (default: 5)",
    )


def _wrap(text: str) -> str:
    """A description paragraph, wrapped here: the raw formatter keeps the examples' lines as written."""
    return textwrap.fill(text, width=88)


def _check(args: argparse.Namespace) -> None:
    """What argparse cannot say alone; `error()` prints the subcommand's usage and exits with 2."""
    subparser: argparse.ArgumentParser = args.subparser
    if args.subcommand == "run":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            subparser.error("give the command to run, e.g. otel-aitrack run -- python app.py")
        args.command = command
    if args.subcommand == "failures" and args.traceback and not args.tempo:
        subparser.error("--traceback needs --tempo URL (the tracebacks are on the spans)")


def _missing(error: ModuleNotFoundError, subcommand: str) -> int:
    name = error.name or ""
    missing = [dist for module, dist in _CLI_EXTRA.items() if name == module or name.startswith(module + ".")]
    if not missing:
        raise error
    print(f"otel-aitrack {subcommand}: {missing[0]} is not installed: {INSTALL_HINT}", file=sys.stderr)
    return 1
