"""Kafka Connect: its REST API (`client`), the connector configs kept in the repository
(`configs`) and the Debezium change events of the reference table (`debezium`).

Nothing is re-exported here: the workers decode Debezium records without loading the REST
client's HTTP stack."""
