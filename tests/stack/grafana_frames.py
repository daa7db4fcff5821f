"""What Grafana does with the data of a table panel, re-stated for the Failure groups table: the frames
its Prometheus and Tempo datasources build, and the transformations the panel applies to them.

Re-stated from Grafana's sources (public/app/plugins/datasource/tempo/resultTransformer.ts
`createTableFrameFromTraceQlQueryAsSpans`; @grafana/prometheus `transformMetricDataToTable`;
@grafana/data transformers `organize`, `groupBy`, `joinByField` with mode `outerTabular`), only as far
as the panel uses them: fields are found by display name (config.displayName, else
config.displayNameFromDS, else the name), as Grafana finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Field:
    name: str
    values: list[Any]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return str(self.config.get("displayName") or self.config.get("displayNameFromDS") or self.name)


@dataclass
class Frame:
    fields: list[Field]
    ref_id: str = ""

    def column(self, name: str) -> list[Any]:
        return next(f.values for f in self.fields if f.display_name == name)

    def rows(self) -> list[dict[str, Any]]:
        length = len(self.fields[0].values) if self.fields else 0
        return [{f.display_name: f.values[i] for f in self.fields} for i in range(length)]


# --- The datasources' frames -------------------------------------------------------------------------
def prometheus_table(ref_id: str, result: Sequence[dict[str, Any]], several_queries: bool = False) -> Frame:
    """An instant query with format "table": Time, one field per label (sorted), Value."""
    labels = sorted({name for sample in result for name in sample["metric"]})
    fields = [Field("Time", [float(s["value"][0]) * 1000 for s in result])]
    fields += [
        Field(name, [s["metric"].get(name, "") for s in result], {"filterable": True}) for name in labels
    ]
    fields.append(
        Field(f"Value #{ref_id}" if several_queries else "Value", [float(s["value"][1]) for s in result])
    )
    return Frame(fields, ref_id)


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    start_ms: int
    attributes: dict[str, str]  # by key, as Tempo returns selected attributes: without `span.`


def tempo_spans_table(spans: Sequence[Span]) -> Frame:
    """A TraceQL search with tableType "spans": one row per span, traces newest first."""
    keys = sorted({key for span in spans for key in span.attributes})
    ordered = sorted(spans, key=lambda span: -span.start_ms)  # Grafana sorts the traces newest first
    fields = [
        Field("traceIdHidden", [s.trace_id for s in ordered], {"custom": {"hidden": True}}),
        Field("traceService", ["shop" for _ in ordered], {"displayNameFromDS": "Trace Service"}),
        Field("traceName", ["POST /invoice" for _ in ordered], {"displayNameFromDS": "Trace Name"}),
        Field("spanID", [s.span_id for s in ordered], {"displayNameFromDS": "Span ID"}),
        Field("time", [s.start_ms for s in ordered], {"displayNameFromDS": "Start time"}),
        Field("name", ["chat gpt-4o-mini" for _ in ordered], {"displayNameFromDS": "Name"}),
        *(Field(key, [s.attributes.get(key) for s in ordered], {"displayNameFromDS": key}) for key in keys),
        Field("duration", [1_000_000 for _ in ordered], {"displayNameFromDS": "Duration", "unit": "ns"}),
    ]
    return Frame(fields, "traces")


# --- The transformations -----------------------------------------------------------------------------
def organize(frames: list[Frame], options: dict[str, Any]) -> list[Frame]:
    """Order by indexByName (the others after, in their order), drop excludeByName, rename."""
    index = options.get("indexByName") or {}
    exclude = options.get("excludeByName") or {}
    rename = options.get("renameByName") or {}
    done = []
    for frame in frames:
        kept = [f for f in frame.fields if not exclude.get(f.display_name)]
        if index:
            kept.sort(key=lambda f: index.get(f.display_name, len(index)))
        renamed = [
            Field(f.name, f.values, {**f.config, "displayName": rename[f.display_name]})
            if rename.get(f.display_name)
            else f
            for f in kept
        ]
        done.append(Frame(renamed, frame.ref_id))
    return done


REDUCERS: dict[str, Callable[[list[Any]], Any]] = {
    "sum": lambda values: sum(v for v in values if v is not None),
    "first": lambda values: values[0] if values else None,
}


def group_by(frames: list[Frame], options: dict[str, Any]) -> list[Frame]:
    """Per frame: a frame with none of the group-by fields is dropped; the others become one row per
    group, the group-by fields (config kept) then `<field> (<reducer>)` fields (config dropped)."""
    config = options["fields"]
    keys = [name for name, field_options in config.items() if field_options["operation"] == "groupby"]
    done = []
    for frame in frames:
        grouping = [f for f in frame.fields if f.display_name in keys]
        if not grouping:
            continue
        groups: dict[tuple[Any, ...], list[int]] = {}
        for row in range(len(frame.fields[0].values)):
            groups.setdefault(tuple(f.values[row] for f in grouping), []).append(row)
        fields = [
            Field(f.name, [f.values[rows[0]] for rows in groups.values()], dict(f.config)) for f in grouping
        ]
        for f in frame.fields:
            field_options = config.get(f.display_name)
            if not field_options or field_options["operation"] != "aggregate":
                continue
            for reducer in field_options["aggregations"]:
                values = [REDUCERS[reducer]([f.values[r] for r in rows]) for rows in groups.values()]
                fields.append(Field(f"{f.display_name} ({reducer})", values))
        done.append(Frame(fields, frame.ref_id))
    return done


def join_by_field(frames: list[Frame], options: dict[str, Any]) -> list[Frame]:
    """mode outerTabular: a SQL full outer join on the `byField` field, the first frame on the left;
    the join field first, then the left frame's other fields, then the right's."""
    assert options["mode"] == "outerTabular"
    by = options["byField"]
    joinable = [frame for frame in frames if any(f.display_name == by for f in frame.fields)]
    if len(joinable) == 1:
        return joinable
    left, right = joinable  # the panel joins two frames
    key = next(f for f in left.fields if f.display_name == by)
    left_rest = [f for f in left.fields if f is not key]
    right_key = next(f for f in right.fields if f.display_name == by)
    right_rest = [f for f in right.fields if f is not right_key]
    pairs: list[tuple[int | None, int | None]] = []
    matched = set()
    for i, value in enumerate(key.values):
        found = [j for j, other in enumerate(right_key.values) if value is not None and other == value]
        pairs += [(i, j) for j in found] or [(i, None)]
        matched |= set(found)
    pairs += [(None, j) for j in range(len(right_key.values)) if j not in matched]
    joined_key = [key.values[i] if i is not None else right_key.values[j] for i, j in pairs]  # type: ignore[index]
    fields = [Field(key.name, joined_key, dict(key.config))]
    fields += [
        Field(f.name, [f.values[i] if i is not None else None for i, _ in pairs], f.config) for f in left_rest
    ]
    fields += [
        Field(f.name, [f.values[j] if j is not None else None for _, j in pairs], f.config)
        for f in right_rest
    ]
    return [Frame(fields)]


TRANSFORMATIONS = {"organize": organize, "groupBy": group_by, "joinByField": join_by_field}


def transform(frames: list[Frame], transformations: Sequence[dict[str, Any]]) -> list[Frame]:
    for transformation in transformations:
        frames = TRANSFORMATIONS[transformation["id"]](frames, transformation["options"])
    return frames
