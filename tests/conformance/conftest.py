"""Fixtures of the conformance suite: each test runs once per provider case, against its fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.cases import CASES, ProviderCase


@pytest.fixture(scope="session")
def running_fakes() -> Iterator[dict[str, Any]]:
    """One fake per case, started once for the session."""
    started: dict[str, Any] = {}
    try:
        for case in CASES:
            started[case.name] = case.fake().start()
        yield started
    finally:
        for fake in started.values():
            fake.stop()


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> ProviderCase:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def provider_fake(case: ProviderCase, running_fakes: dict[str, Any]) -> Any:
    fake = running_fakes[case.name]
    fake.reset()
    return fake
