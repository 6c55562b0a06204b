"""API keys never reach the logs: browsers send a WebSocket's key (and the dashboard page
passes its own) in the query string, which uvicorn writes into its log lines."""

from __future__ import annotations

import logging

import pytest

from pipeline.entrypoints.logging import redact_api_keys_in_server_logs


@pytest.mark.parametrize("name", ["uvicorn.error", "uvicorn.access"])
def test_uvicorn_lines_carry_no_api_key(name: str, caplog: pytest.LogCaptureFixture) -> None:
    redact_api_keys_in_server_logs()
    redact_api_keys_in_server_logs()  # installing twice changes nothing

    with caplog.at_level(logging.INFO, logger=name):
        logging.getLogger(name).info(
            '%s - "WebSocket %s" [accepted]',
            "127.0.0.1:5000",
            "/ws/sensors?sensor_type=humidity&api_key=s3cr3t-Key_1&alerts_only=false",
        )
        logging.getLogger(name).info("GET /?api_key=another%20one HTTP/1.1")

    text = caplog.text
    assert "s3cr3t" not in text
    assert "another" not in text
    assert "api_key=***&alerts_only=false" in text
    assert "sensor_type=humidity" in text
    assert len(logging.getLogger(name).filters) == 1
