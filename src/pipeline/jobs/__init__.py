"""The jobs pipeline runs: one module of declarations per domain, on the stream engine."""
