"""Fixtures of the conformance suite: each test runs once per provider case, against its fake.

A test that takes `error`, `stream_error` or `echo` runs once per entry of that table of each case; an
async test runs for the cases whose SDK has an async client; `@requires("retries")` keeps the cases
whose attribute of that name is true, `@excluding("google")` leaves that case out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conformance.cases import CASES
from tests.conformance.kit import ProviderCase
from tests.conftest import Telemetry

TABLES = {"error": "errors", "stream_error": "stream_errors", "echo": "echoes"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*attributes): only the cases whose attributes are true")
    config.addinivalue_line("markers", "excluding(*names): every case but those")


def requires(*attributes: str) -> pytest.MarkDecorator:
    return pytest.mark.requires(*attributes)


def excluding(*names: str) -> pytest.MarkDecorator:
    return pytest.mark.excluding(*names)


def _cases(metafunc: pytest.Metafunc) -> list[ProviderCase]:
    wanted = [attribute for mark in metafunc.definition.iter_markers("requires") for attribute in mark.args]
    if inspect.iscoroutinefunction(metafunc.function):
        wanted.append("async_client")
    left_out = {name for mark in metafunc.definition.iter_markers("excluding") for name in mark.args}
    return [
        case
        for case in CASES
        if case.name not in left_out and all(getattr(case, attribute) for attribute in wanted)
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    cases = _cases(metafunc)
    for name, table in TABLES.items():
        if name in metafunc.fixturenames:
            pairs = [(case, entry) for case in cases for entry in getattr(case, table)]
            ids = [f"{case.name}-{entry.scenario}" for case, entry in pairs]
            metafunc.parametrize(("case", name), pairs, ids=ids)
            return
    metafunc.parametrize("case", cases, ids=[case.name for case in cases])


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


@pytest.fixture
def provider_fake(case: ProviderCase, running_fakes: dict[str, Any]) -> Any:
    fake = running_fakes[case.name]
    fake.reset()
    return fake


@pytest.fixture
def make_client(case: ProviderCase, provider_fake: Any, telemetry: Telemetry) -> Callable[..., Any]:
    """`make_client(attempts=3)`: a client of the case's SDK on its fake, its own tracing into ours."""

    def make(**options: Any) -> Any:
        return case.client(provider_fake.base_url, tracer_provider=telemetry.tracer_provider, **options)

    return make


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    return make_client()


@pytest.fixture
def async_client(case: ProviderCase, provider_fake: Any, telemetry: Telemetry) -> Any:
    assert case.async_client is not None
    return case.async_client(provider_fake.base_url, tracer_provider=telemetry.tracer_provider)
