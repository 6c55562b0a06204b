"""Kafka Connect: its REST API, and the connector configs kept in the repository."""

from pipeline.adapters.connect.client import ConnectorStatus, KafkaConnectClient
from pipeline.adapters.connect.configs import ConnectorConfig, connector_configs, connectors_dir

__all__ = [
    "ConnectorConfig",
    "ConnectorStatus",
    "KafkaConnectClient",
    "connector_configs",
    "connectors_dir",
]
