"""Put on PYTHONPATH by `otel-aitrack run`: instruments the program and records its figures at exit.

Never breaks the program: a Python without otel-aitrack simply runs uninstrumented. The
`sitecustomize` this one shadows (a distribution's, a virtualenv's) still runs, after it.
"""

from __future__ import annotations

import importlib
import os
import sys


def _start() -> None:
    try:
        from otel_aitrack.cli.child import start  # noqa: PLC0415 (absent from other Pythons)
    except ImportError:
        return  # another Python, without otel-aitrack: the program runs as it would
    try:
        start()
    except Exception as error:  # the program must run even when instrumenting it fails
        print(f"otel-aitrack run: could not instrument this program: {error!r}", file=sys.stderr)


def _run_the_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as error:
        if error.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = saved
        if ours is not None:
            sys.modules["sitecustomize"] = ours


_start()
_run_the_shadowed_sitecustomize()
