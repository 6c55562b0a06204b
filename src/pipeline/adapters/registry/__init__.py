"""Schema registries reached over the network."""

from pipeline.adapters.registry.confluent import ConfluentSchemaRegistry

__all__ = ["ConfluentSchemaRegistry"]
