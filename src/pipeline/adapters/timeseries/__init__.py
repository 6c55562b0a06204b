"""The time-series port on InfluxDB's v2 write API (influxdb-client)."""

from pipeline.adapters.timeseries.influxdb import InfluxTimeSeries

__all__ = ["InfluxTimeSeries"]
