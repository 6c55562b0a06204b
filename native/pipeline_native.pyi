"""The compiled decode core of pipeline (the Rust crate beside this file)."""

from collections.abc import Iterable

class RecordDecoder:
    """Decodes Confluent wire-format payloads of one flat Avro record schema."""

    def __new__(cls, schema: str) -> RecordDecoder:
        """A decoder of records written with `schema` (Avro JSON); ValueError if the schema
        is not valid Avro or not a flat record of the types the decoder reads."""

    def decode_many(
        self, payloads: Iterable[object], headers: list[bytes]
    ) -> list[tuple[object, ...] | str | None]:
        """Per payload whose 5-byte header is one of `headers`: the tuple of its field values
        in schema order, or why its body is malformed; None for any other payload."""
