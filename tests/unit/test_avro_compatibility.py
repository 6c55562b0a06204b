"""Avro schema resolution as the registry's compatibility check sees it."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.adapters.avro import compatibility_problem, read_problem


def record(*fields: dict[str, Any], name: str = "Thing", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields), **extra}


def field(name: str, kind: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "Colour", "symbols": list(symbols), **extra}


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("int", "long"),
        ("int", "double"),
        ("long", "float"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
        ("string", ["null", "string"]),
        (["null", "int"], ["null", "long"]),
        ({"type": "long", "logicalType": "timestamp-micros"}, "long"),
    ],
)
def test_readable_type_changes(writer: Any, reader: Any) -> None:
    assert read_problem(record(field("x", reader)), record(field("x", writer))) is None


@pytest.mark.parametrize(
    ("writer", "reader"),
    [("long", "int"), ("double", "float"), ("string", "int"), (["null", "string"], "string")],
)
def test_unreadable_type_changes_name_the_field(writer: Any, reader: Any) -> None:
    problem = read_problem(record(field("x", reader)), record(field("x", writer)))

    assert problem is not None
    assert "Thing.x" in problem


def test_reader_field_missing_from_writer_needs_a_default() -> None:
    writer = record(field("a", "int"))

    assert read_problem(record(field("a", "int"), field("b", "int", default=0)), writer) is None
    problem = read_problem(record(field("a", "int"), field("b", "int")), writer)
    assert problem is not None
    assert "'b'" in problem


def test_writer_field_unknown_to_the_reader_is_skipped() -> None:
    assert (
        read_problem(record(field("a", "int")), record(field("a", "int"), field("z", "string")))
        is None
    )


def test_renamed_field_is_found_through_its_alias() -> None:
    writer = record(field("old", "int"))

    assert read_problem(record(field("new", "int", aliases=["old"])), writer) is None


def test_renamed_record_is_unreadable_unless_aliased() -> None:
    writer = record(field("a", "int"), name="Before")

    assert read_problem(record(field("a", "int"), name="After"), writer) is not None
    assert (
        read_problem(record(field("a", "int"), name="After", aliases=["t.Before"]), writer) is None
    )


def test_enum_reader_must_know_every_writer_symbol_unless_it_has_a_default() -> None:
    writer = record(field("c", enum("RED", "GREEN", "BLUE")))

    problem = read_problem(record(field("c", enum("RED", "GREEN"))), writer)
    assert problem is not None
    assert "BLUE" in problem
    with_default = enum("RED", "GREEN", "OTHER", default="OTHER")
    assert read_problem(record(field("c", with_default)), writer) is None


def test_nested_records_in_arrays_are_checked_field_by_field() -> None:
    line = record(field("qty", "int"), name="Line")
    wider_line = record(field("qty", "int"), field("sku", "string"), name="Line")

    problem = read_problem(
        record(field("lines", {"type": "array", "items": wider_line})),
        record(field("lines", {"type": "array", "items": line})),
    )

    assert problem is not None
    assert "lines[]" in problem
    assert "'sku'" in problem


def test_named_type_references_are_resolved() -> None:
    colour = enum("RED")
    schema = record(field("a", colour), field("b", ["null", "t.Colour"], default=None))

    assert read_problem(schema, schema) is None


def test_recursive_schemas_terminate() -> None:
    node = record(
        field("value", "int"), field("next", ["null", "t.Node"], default=None), name="Node"
    )

    assert read_problem(node, node) is None


@pytest.mark.parametrize(
    ("level", "accepted"),
    [("BACKWARD", True), ("FORWARD", False), ("FULL", False), ("NONE", True)],
)
def test_levels_check_the_direction_they_name(level: str, accepted: bool) -> None:
    old = record(field("n", "int"))
    new = record(field("n", "long"))  # old data reads as long; new data does not read as int

    assert (compatibility_problem(level, new, [old]) is None) is accepted


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="SIDEWAYS"):
        compatibility_problem("SIDEWAYS", "int", ["int"])
