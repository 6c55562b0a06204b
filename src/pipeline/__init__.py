"""pipeline: real-time event streaming on Apache Kafka."""
