"""The telemetry names are public API: each one is documented, and semconv names match upstream."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import otel_aitrack
from otel_aitrack import names

ROOT = Path(__file__).resolve().parent.parent


def _public_names() -> dict[str, str]:
    return {key: value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}


@pytest.mark.parametrize("constant", sorted(_public_names()))
def test_every_name_is_in_docs_telemetry(constant: str) -> None:
    doc = (ROOT / "docs" / "telemetry.md").read_text()
    assert f"`{_public_names()[constant]}`" in doc, f"{constant} missing from docs/telemetry.md"


def test_every_category_and_outcome_is_documented() -> None:
    doc = (ROOT / "docs" / "telemetry.md").read_text()
    for holder in (names.Category, names.StreamOutcome):
        for key, value in vars(holder).items():
            if key.isupper():
                assert f"`{value}`" in doc


def test_semconv_names_match_the_semantic_conventions_package() -> None:
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
    from opentelemetry.semconv.attributes import error_attributes, server_attributes

    assert names.ERROR_TYPE == error_attributes.ERROR_TYPE
    assert names.SERVER_ADDRESS == server_attributes.SERVER_ADDRESS
    assert names.GEN_AI_OPERATION_NAME == gen_ai.GEN_AI_OPERATION_NAME
    assert names.GEN_AI_REQUEST_MODEL == gen_ai.GEN_AI_REQUEST_MODEL
    assert names.GEN_AI_USAGE_INPUT_TOKENS == gen_ai.GEN_AI_USAGE_INPUT_TOKENS
    if hasattr(gen_ai, "GEN_AI_PROVIDER_NAME"):
        assert names.GEN_AI_PROVIDER_NAME == gen_ai.GEN_AI_PROVIDER_NAME


def test_version_matches_pyproject() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', text, re.M).group(1) == otel_aitrack.__version__
