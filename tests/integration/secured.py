"""Settings and environments of the pipeline's principals on the stack's SASL_SSL listener
(`scripts/stack up --security`), and the ACLs of a test's own topics, granted as an
administrator through the stack's PLAINTEXT listener (whose principal is a super user)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import SecretStr

from pipeline.adapters.kafka.acls import KafkaAccessControl
from pipeline.application.access import AccessRule, Principals, access_rules
from pipeline.entrypoints.acls import access_layout
from pipeline.entrypoints.settings import KafkaSettings, Settings
from tests.services import CA_FILE, SASL_BOOTSTRAP, SECRETS_DIR, require_service

ACL_PROPAGATION_S = 2.0
PRINCIPALS = Principals(producer="User:producer", worker="User:worker", api="User:api")


def password(user: str) -> str:
    """The stack's SCRAM password of `user`."""
    return (Path(require_service(SECRETS_DIR)) / user).read_text().strip()


def as_user(
    settings: Settings,
    user: str | None,
    *,
    secret: str | None = None,
    ca_file: str | None = None,
    protocol: str = "SASL_SSL",
) -> Settings:
    """`settings` on the SASL_SSL listener as `user` (None: no credentials at all)."""
    kafka = KafkaSettings(
        bootstrap_servers=require_service(SASL_BOOTSTRAP),
        security_protocol=protocol,
        sasl_mechanism="SCRAM-SHA-512" if user else None,
        sasl_username=user,
        sasl_password=SecretStr(secret or password(user)) if user else None,
        ssl_ca_location=ca_file or (require_service(CA_FILE) if user else None),
        options=settings.kafka.options,
    )
    return settings.model_copy(update={"kafka": kafka})


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """The PIPELINE_KAFKA__… variables of `kafka` (for a `pipeline` subprocess)."""
    env = {"PIPELINE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers or ""}
    if kafka.security_protocol:
        env["PIPELINE_KAFKA__SECURITY_PROTOCOL"] = kafka.security_protocol
    if kafka.sasl_mechanism:
        env["PIPELINE_KAFKA__SASL_MECHANISM"] = kafka.sasl_mechanism
    if kafka.sasl_username:
        env["PIPELINE_KAFKA__SASL_USERNAME"] = kafka.sasl_username
    if kafka.sasl_password is not None:
        env["PIPELINE_KAFKA__SASL_PASSWORD"] = kafka.sasl_password.get_secret_value()
    if kafka.ssl_ca_location:
        env["PIPELINE_KAFKA__SSL_CA_LOCATION"] = kafka.ssl_ca_location
    return env


async def grant(
    settings: Settings,
    principals: Principals = PRINCIPALS,
    *,
    instead: dict[AccessRule, AccessRule] | None = None,
) -> None:
    """Grant `principals` the ACLs of `settings`' topics and groups, each rule that is a key
    of `instead` replaced by its value."""
    rules = [
        (instead or {}).get(rule, rule)
        for rule in access_rules(access_layout(settings), principals)
    ]
    plaintext = os.environ["PIPELINE_KAFKA__BOOTSTRAP_SERVERS"]
    await KafkaAccessControl({"bootstrap.servers": plaintext}).grant(rules)
    # The controller has committed them; every broker's authorizer applies them a moment
    # later, from the metadata log.
    await asyncio.sleep(ACL_PROPAGATION_S)
