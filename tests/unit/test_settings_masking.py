"""Secrets in the settings never show: `pipeline config`, the settings' repr and settings
errors mask passwords, Kafka options named like secrets and URL passwords, while the
adapters still get the real values."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog
from pydantic import ValidationError

from pipeline.entrypoints import cli
from pipeline.entrypoints.settings import KafkaSettings, Settings

SECRET_OPTIONS = {
    "ssl.key.password": "s3cret-1",
    "sasl.oauthbearer.client.secret": "s3cret-2",
    "ssl.key.pem": "s3cret-3",
    "ssl.keystore.password": "s3cret-4",
    "sasl.oauthbearer.token.endpoint.url": "https://idp.example/s3cret-5",
    "SSL.KEY.PASSWORD": "s3cret-6",
}
PLAIN_OPTIONS = {"ssl.ca.location": "/etc/ca.pem", "linger.ms": "5"}


@pytest.fixture(autouse=True)
def no_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("PIPELINE_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()


def with_options() -> Settings:
    return Settings(kafka=KafkaSettings(options={**SECRET_OPTIONS, **PLAIN_OPTIONS}))


def test_pipeline_config_masks_every_option_named_like_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    options = '{"ssl.key.password": "s3cret", "ssl.ca.location": "/etc/ca.pem"}'
    monkeypatch.setenv("PIPELINE_KAFKA__OPTIONS", options)

    assert cli.main(["config"]) == 0

    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert '"ssl.key.password": "**********"' in out
    assert '"ssl.ca.location": "/etc/ca.pem"' in out


def test_masked_settings_hide_secret_options_and_show_the_others() -> None:
    shown = with_options().masked()["kafka"]["options"]

    assert shown == {
        **dict.fromkeys(SECRET_OPTIONS, "**********"),
        **PLAIN_OPTIONS,
    }


def test_the_settings_repr_shows_no_secret() -> None:
    text = repr(with_options())

    assert "s3cret" not in text
    assert "/etc/ca.pem" in text


def test_librdkafka_still_gets_the_real_values() -> None:
    config = with_options().kafka.client_config()

    assert config == {**SECRET_OPTIONS, **PLAIN_OPTIONS}


def test_an_invalid_option_is_named_but_its_value_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA__OPTIONS", '{"ssl.key.password": 712345}')

    with pytest.raises(ValidationError) as error:
        Settings()

    assert "ssl.key.password" in str(error.value)
    assert "712345" not in str(error.value)


def test_a_password_in_the_registry_url_is_masked() -> None:
    settings = Settings.model_validate(
        {"registry": {"url": "https://user:s3cret@registry.example:8081/apis/ccompat/v7"}}
    )

    assert settings.masked()["registry"]["url"] == (
        "https://user:***@registry.example:8081/apis/ccompat/v7"
    )


def test_the_time_series_token_and_a_password_in_its_url_are_masked() -> None:
    settings = Settings.model_validate(
        {"timeseries": {"url": "http://writer:s3cret-7@influx:8086", "token": "s3cret-8"}}
    )

    shown = settings.masked()["timeseries"]

    assert shown["url"] == "http://writer:***@influx:8086"
    assert "s3cret" not in repr(shown)
    assert "s3cret-8" not in repr(settings)  # the token (a URL is shown as given, as elsewhere)
    assert settings.timeseries.token.get_secret_value() == "s3cret-8"


def test_a_consumer_option_named_like_a_secret_is_masked_and_reaches_librdkafka(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    options = '{"sasl.oauthbearer.client.secret": "s3cret", "queued.min.messages": "500"}'
    monkeypatch.setenv("PIPELINE_KAFKA__CONSUMER_OPTIONS", options)

    assert cli.main(["config"]) == 0

    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert '"queued.min.messages": "500"' in out
    assert Settings().kafka.consumer_config() == {
        "sasl.oauthbearer.client.secret": "s3cret",
        "queued.min.messages": "500",
    }
