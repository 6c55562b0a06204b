"""Telemetry adapters: Prometheus metrics (`prometheus`) and the worker's `/metrics` server
(`server`)."""
