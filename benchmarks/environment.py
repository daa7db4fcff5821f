"""The instruction benchmark's own virtual environment: otel-aitrack and the three peers side by side.

Made by the benchmark in the repository's `.venv-bench/` (git ignores it), reused while its
requirements stay the same. openai, the OTel API and SDK, wrapt, httpx2 and pydantic are pinned to
the versions of the environment running the benchmark, so that every column measures the same SDK.
The three peers install side by side; each still runs in a process of its own (see setups.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from benchmarks.setups import PEERS

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-bench"
_STAMP = VENV / "benchmark-requirements.json"
# Pinned to this environment's versions: what the calls run through, in every column alike.
PINNED = ("openai", "opentelemetry-api", "opentelemetry-sdk", "wrapt", "httpx2", "pydantic")
# Reported with the table.
REPORTED = (*PINNED, "otel-aitrack", *(peer.distribution for peer in PEERS))


def requirements() -> list[str]:
    pins = []
    for name in PINNED:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:  # httpx2 before openai 3: whatever openai brings
            continue
    return ["-e", str(ROOT), *pins, *(peer.distribution for peer in PEERS)]


def python() -> Path:
    """The environment's interpreter, made or brought up to date first."""
    wanted = requirements()
    interpreter = VENV / "bin" / "python"
    if interpreter.exists() and _STAMP.exists() and json.loads(_STAMP.read_text()) == wanted:
        return interpreter
    print(f"(making the benchmark's environment in {VENV.relative_to(ROOT)}/: {' '.join(wanted[2:])})")
    if not interpreter.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(interpreter), "-m", "pip", "install", "-q", *wanted], check=True)
    _STAMP.write_text(json.dumps(wanted))
    return interpreter


def versions(interpreter: Path) -> dict[str, str]:
    """The versions of REPORTED installed in the environment of `interpreter`."""
    script = (
        "import json, importlib.metadata as m\n"
        "def v(name):\n"
        "    try: return m.version(name)\n"
        "    except m.PackageNotFoundError: return 'absent'\n"
        f"print(json.dumps({{name: v(name) for name in {list(REPORTED)!r}}}))"
    )
    found = subprocess.run([str(interpreter), "-c", script], check=True, capture_output=True, text=True)
    return dict(json.loads(found.stdout))
