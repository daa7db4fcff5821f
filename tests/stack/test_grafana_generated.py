"""The committed dashboard, alert rules and promtool tests are exactly what grafana/src generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


def generate(*args: str, script: bool = False) -> subprocess.CompletedProcess[str]:
    entry = ["grafana/src/generate.py"] if script else ["-m", "grafana.src.generate"]
    return subprocess.run(
        [sys.executable, *entry, *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_committed_files_equal_a_fresh_generation(tmp_path: Path) -> None:
    result = generate("--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(generated) == 6
    for relative in generated:
        committed = REPO / relative
        assert committed.is_file(), f"{relative} is generated but not committed"
        assert committed.read_bytes() == (tmp_path / relative).read_bytes(), f"{relative} drifted: regenerate"


@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
def test_check_passes_on_the_committed_files(script: bool) -> None:
    result = generate("--check", script=script)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_and_names_the_file_on_drift(tmp_path: Path) -> None:
    assert generate("--root", str(tmp_path)).returncode == 0
    rules = tmp_path / "grafana/prometheus/aitrack-rules.yaml"
    rules.write_text(rules.read_text().replace("> 0.5", "> 0.6"))
    result = generate("--check", "--root", str(tmp_path))
    assert result.returncode == 1
    assert "grafana/prometheus/aitrack-rules.yaml" in result.stdout


def test_check_fails_when_a_generated_file_is_missing(tmp_path: Path) -> None:
    assert generate("--root", str(tmp_path)).returncode == 0
    (tmp_path / "grafana/dashboards/ai-call-failures.json").unlink()
    assert generate("--check", "--root", str(tmp_path)).returncode == 1
