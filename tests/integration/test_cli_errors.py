"""What the commands say when the database refuses them: one line naming what is wrong and
what to check, exit 1, no traceback (on the real PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy.engine import make_url

from pipeline.entrypoints import cli, worker
from tests.services import DATABASE, KAFKA, require_service

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def only_stack_endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    kafka, database = require_service(KAFKA), require_service(DATABASE)
    for name in list(os.environ):
        if name.startswith("PIPELINE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(KAFKA, kafka)
    monkeypatch.setenv(DATABASE, database)
    yield
    structlog.reset_defaults()


def with_password(password: str) -> str:
    url = make_url(os.environ[DATABASE]).set(password=password)
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize(
    ("run", "prog"),
    [
        (lambda: cli.main(["db", "upgrade"]), "pipeline"),
        (lambda: worker.main(["sensors", "--until-caught-up"]), "pipeline-worker"),
    ],
    ids=["db upgrade", "worker"],
)
def test_a_wrong_database_password_is_one_line_that_says_what_to_check(
    run: object, prog: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATABASE, with_password("not-the-password"))

    assert run() == 1  # type: ignore[operator]

    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"{prog}: error: ")
    assert 'password authentication failed for user "' in err
    assert "check the user, password and database name in PIPELINE_DATABASE__URL" in err
    assert "not-the-password" not in err
