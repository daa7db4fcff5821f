"""A dashboard read through Grafana's own schema types (PyPI's grafana-foundation-sdk, generated from
the schema Grafana itself validates with): what the schema does not know, or knows otherwise.

The SDK's decoders keep only the keys the schema has and take enum values as they come, so a dashboard
is decoded, encoded again and compared (every key and value must come back: a misspelt key does not),
then its enums are checked against the schema's (panel types, mapping and threshold modes, variable
fields, colour modes, cell types, ...) and its thresholds' order. Parts the schema leaves untyped in
the panel (field overrides, transformations) are decoded with the types they hold.
"""

from __future__ import annotations

import enum
import itertools
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as schema

register_default_plugins()
SDK_PACKAGE = "grafana_foundation_sdk"


# A panel whose targets each name their own datasource (Grafana's "-- Mixed --" datasource).
MIXED = {"type": "datasource", "uid": "-- Mixed --"}


def problems(dashboard: dict[str, Any]) -> list[str]:
    """Everything in `dashboard` that Grafana's schema does not accept; empty when it is valid."""
    # The SDK decodes a panel's targets as queries of the panel's datasource; Grafana runs each target
    # of a mixed panel on its own. So those targets are set aside here and decoded one by one.
    mixed = {
        index for index, panel in enumerate(dashboard.get("panels", [])) if panel.get("datasource") == MIXED
    }
    panels = [
        {key: value for key, value in panel.items() if key != "targets" or index not in mixed}
        for index, panel in enumerate(dashboard.get("panels", []))
    ]
    try:
        model = schema.Dashboard.from_json(
            {**dashboard, "panels": panels} if "panels" in dashboard else dashboard
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return [f"does not decode: {type(error).__name__} {error}"]
    found = list(lost({**dashboard, "panels": panels}, encoded(model), "dashboard"))
    found += enum_problems(model, "dashboard")
    for index, panel in enumerate(dashboard.get("panels", [])):
        found += panel_problems(panel, f"panels[{index}]")
        if index in mixed:
            found += _mixed_target_problems(panel, f"dashboard.panels[{index}]")
    return found


def _mixed_target_problems(panel: dict[str, Any], path: str) -> list[str]:
    found: list[str] = []
    for index, target in enumerate(panel.get("targets", [])):
        where = f"{path}.targets[{index}]"
        query = runtime.dataquery_from_json(target, str(target.get("datasource", {}).get("type", "")))
        found += [*lost(target, encoded(query), where), *enum_problems(query, where)]
    return found


def encoded(model: object) -> Any:
    return json.loads(json.dumps(model, cls=JSONEncoder))


def lost(original: Any, again: Any, path: str) -> Iterator[str]:
    """What did not survive decoding and encoding: keys the schema lacks, values it changed.
    (The encoder adds the schema's defaults; those are not in `original` and not looked at.)"""
    if isinstance(original, dict):
        if not isinstance(again, dict):
            yield f"{path}: an object became {again!r}"
            return
        for key, value in original.items():
            if key not in again:
                yield f"{path}.{key}: not in Grafana's schema"
            else:
                yield from lost(value, again[key], f"{path}.{key}")
    elif isinstance(original, list):
        if not isinstance(again, list) or len(again) != len(original):
            yield f"{path}: a list of {len(original)} became {again!r}"
            return
        for index, (item, item_again) in enumerate(zip(original, again, strict=True)):
            yield from lost(item, item_again, f"{path}[{index}]")
    elif original != again:
        yield f"{path}: {original!r} became {again!r}"


# --- Enums ----------------------------------------------------------------------------------------
def enum_problems(model: object, path: str) -> list[str]:
    """Every attribute of the decoded tree whose type is an enum (or a Literal) and whose value is
    none of its members; plus thresholds out of order."""
    found: list[str] = []
    for obj, where in _objects(model, path):
        hints = typing.get_type_hints(type(obj).__init__)
        for name, value in vars(obj).items():
            allowed = _allowed(hints.get(name))
            if value is not None and allowed is not None and value not in allowed:
                found.append(f"{where}.{name}: {value!r} is none of {sorted(allowed, key=str)}")
        if isinstance(obj, schema.ThresholdsConfig):
            found += _threshold_order(obj, where)
    return found


def _allowed(annotation: Any) -> set[Any] | None:
    """The values an annotation admits when it is an enum or a Literal (inside Optional/Union)."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {member.value for member in annotation}
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return set(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        options = [_allowed(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
        if options and all(option is not None for option in options):
            return set().union(*typing.cast(list[set[Any]], options))
    return None


def _objects(value: object, path: str) -> Iterator[tuple[object, str]]:
    """Every schema object in a decoded tree, with its path."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _objects(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _objects(item, f"{path}.{key}")
    elif type(value).__module__.startswith(SDK_PACKAGE) and hasattr(value, "to_json"):
        yield value, path
        for name, item in vars(value).items():
            yield from _objects(item, f"{path}.{name}")


def _threshold_order(thresholds: schema.ThresholdsConfig, path: str) -> list[str]:
    # The schema: "Must be sorted by 'value', first value is always -Infinity" (null).
    values = [step.value for step in thresholds.steps]
    if not values:
        return []
    if values[0] is not None:
        return [f"{path}.steps: the first step must be the base (value null), not {values[0]!r}"]
    rest = values[1:]
    if None in rest or any(b <= a for a, b in itertools.pairwise(rest)):  # type: ignore[operator]
        return [f"{path}.steps: values must rise after the base step: {values}"]
    return []


# --- What the panel schema leaves untyped -----------------------------------------------------------
def panel_problems(panel: dict[str, Any], path: str) -> list[str]:
    kind = panel.get("type", "")
    if kind != "row" and runtime.panelcfg_config(kind) is None:
        return [f"{path}.type: {kind!r} is no panel type Grafana's schema knows"]
    found = [
        f"{path}.targets[{index}]: datasource type {_datasource_type(panel, target)!r} unknown"
        for index, target in enumerate(panel.get("targets", []))
        if isinstance(
            runtime.dataquery_from_json(target, _datasource_type(panel, target)), runtime.UnknownDataquery
        )
    ]
    for index, transformation in enumerate(panel.get("transformations", [])):
        where = f"{path}.transformations[{index}]"
        found += _decoded(schema.DataTransformerConfig, transformation, where)
    overrides = panel.get("fieldConfig", {}).get("overrides", [])
    for index, override in enumerate(overrides):
        found += _override_problems(kind, override, f"{path}.fieldConfig.overrides[{index}]")
    return found


def _datasource_type(panel: dict[str, Any], target: dict[str, Any]) -> str:
    """The datasource type a target's query is of: the panel's, or the target's own in a mixed panel."""
    holder = target if panel.get("datasource") == MIXED else panel
    return str((holder.get("datasource") or {}).get("type", ""))


def _decoded(kind: Any, data: dict[str, Any], path: str) -> list[str]:
    try:
        model = kind.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return [f"{path}: does not decode: {type(error).__name__} {error}"]
    return [*lost(data, encoded(model), path), *enum_problems(model, path)]


def _override_problems(kind: str, override: dict[str, Any], path: str) -> list[str]:
    """An override's properties are field config set by id (`unit`, `custom.cellOptions`, ...): they
    are decoded as the field config of a panel of this type would be."""
    found = _decoded(schema.DashboardFieldConfigSourceOverrides, override, path)
    defaults: dict[str, Any] = {}
    for prop in override.get("properties", []):
        *parents, leaf = str(prop.get("id", "")).split(".")
        target = defaults
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = prop.get("value")
    as_panel = {"type": kind, "fieldConfig": {"defaults": defaults}}
    for problem in _decoded(schema.Panel, as_panel, path):
        found.append(problem.replace(f"{path}.fieldConfig.defaults", f"{path}.properties"))
    return found
