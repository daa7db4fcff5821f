"""Read grafana/slo.yaml, the objectives of the error-budget alerts, into `slo.Objectives`.

A mistake (an unknown key, an objective of 99 instead of 0.99, a prompt type listed twice) stops the
generator with the file and the key, rather than generating alerts that never fire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from otel_aitrack.stack.slo import Objectives

SLO_FILE = "grafana/slo.yaml"
_KEYS = {"default_objective", "prompt_types"}


class SloConfigError(ValueError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML keeps the last one silently)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key) for key, _ in node.value]
    twice = sorted({str(key) for key in keys if keys.count(key) > 1})
    if twice:
        raise SloConfigError(f"listed twice: {', '.join(twice)}")
    return dict(loader.construct_pairs(node))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse(text: str, where: str = SLO_FILE) -> Objectives:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except (yaml.YAMLError, SloConfigError) as error:
        raise SloConfigError(f"{where}: {error}") from None
    if not isinstance(data, dict) or "default_objective" not in data:
        raise SloConfigError(f"{where}: expected a mapping with default_objective (and prompt_types)")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise SloConfigError(
            f"{where}: unknown key {', '.join(unknown)}; expected {', '.join(sorted(_KEYS))}"
        )
    prompt_types = data.get("prompt_types") or {}
    if not isinstance(prompt_types, dict) or not all(isinstance(name, str) for name in prompt_types):
        raise SloConfigError(f"{where}: prompt_types must map prompt type names to objectives")
    try:
        return Objectives.of(data["default_objective"], prompt_types)
    except ValueError as error:
        raise SloConfigError(f"{where}: {error}") from None


def load(path: Path) -> Objectives:
    return parse(path.read_text(encoding="utf-8"), str(path))
