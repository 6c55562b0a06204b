"""`KafkaAccessControl`: grants and lists ACLs through a librdkafka AdminClient (the cluster
must run an authorizer, e.g. KRaft's StandardAuthorizer)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from pipeline.adapters.kafka.config import translate
from pipeline.application.access import AccessRule, Operation, Pattern, Resource
from pipeline.application.errors import ConfigurationError

_RESOURCES: Final = {
    Resource.TOPIC: ResourceType.TOPIC,
    Resource.GROUP: ResourceType.GROUP,
    Resource.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
}
_PATTERNS: Final = {
    Pattern.LITERAL: ResourcePatternType.LITERAL,
    Pattern.PREFIXED: ResourcePatternType.PREFIXED,
}
_OPERATIONS: Final = {
    Operation.READ: AclOperation.READ,
    Operation.WRITE: AclOperation.WRITE,
    Operation.CREATE: AclOperation.CREATE,
    Operation.DESCRIBE: AclOperation.DESCRIBE,
    Operation.DESCRIBE_CONFIGS: AclOperation.DESCRIBE_CONFIGS,
}


class KafkaAccessControl:
    """Grants `AccessRule`s as ALLOW ACLs (from any host) and lists a principal's ACLs."""

    def __init__(self, settings: dict[str, Any], *, timeout: float = 30.0) -> None:
        self._admin = AdminClient(settings)
        self._timeout = timeout

    async def grant(self, rules: Sequence[AccessRule]) -> None:
        """Create the ACLs; one that exists already is left as it is."""
        if not rules:
            return
        bindings = [_binding(rule) for rule in rules]
        try:
            futures = self._admin.create_acls(bindings, request_timeout=self._timeout)
            for future in futures.values():
                await asyncio.wrap_future(future)
        except KafkaException as exc:
            error = translate(exc, "cannot create ACLs")
            if "SECURITY_DISABLED" in str(error) or "No Authorizer" in str(error):
                raise ConfigurationError(
                    "cannot create ACLs: the Kafka cluster runs no authorizer "
                    "(authorizer.class.name)"
                ) from exc
            raise error from exc

    async def granted(self, principal: str) -> list[AccessRule]:
        """The ALLOW ACLs of `principal` that `AccessRule` can express, sorted."""
        # None matches any resource name and host (the stubs type them as str only).
        query = AclBindingFilter(
            ResourceType.ANY,
            None,  # type: ignore[arg-type]
            ResourcePatternType.ANY,
            principal,
            None,  # type: ignore[arg-type]
            AclOperation.ANY,
            AclPermissionType.ALLOW,
        )
        try:
            bindings = await asyncio.wrap_future(
                self._admin.describe_acls(query, request_timeout=self._timeout)
            )
        except KafkaException as exc:
            raise translate(exc, f"cannot list the ACLs of {principal}") from exc
        rules = (_rule(binding) for binding in bindings)
        return sorted(rule for rule in rules if rule is not None)


def _binding(rule: AccessRule) -> AclBinding:
    return AclBinding(
        _RESOURCES[rule.resource],
        rule.name,
        _PATTERNS[rule.pattern],
        rule.principal,
        "*",
        _OPERATIONS[rule.operation],
        AclPermissionType.ALLOW,
    )


def _rule(binding: AclBinding) -> AccessRule | None:
    resource = next((r for r, t in _RESOURCES.items() if t == binding.restype), None)
    pattern = next((p for p, t in _PATTERNS.items() if t == binding.resource_pattern_type), None)
    operation = next((o for o, t in _OPERATIONS.items() if t == binding.operation), None)
    if resource is None or pattern is None or operation is None:
        return None
    return AccessRule(
        principal=binding.principal,
        resource=resource,
        pattern=pattern,
        name=binding.name,
        operation=operation,
    )
