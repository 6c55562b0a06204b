"""Who may do what on Kafka: the ACLs each principal of the pipeline needs, and no more.

| principal | may                                                                          |
|-----------|------------------------------------------------------------------------------|
| producer  | write the source topics and the generated streams' topics                    |
| worker    | read its source topics, its retry topics and the changelogs it joins; write  |
|           | its retry, dead-letter and late topics, its outputs, and its source topics   |
|           | (a retry level forwards records back); use its consumer groups; under Kafka  |
|           | authority, its transactional ids and changelog topics (`<group>-…`)         |
| api       | read the source and output topics; use its live-view consumer groups          |
| connect   | its worker group and internal topics; write the changelogs its connectors fill |

Creating topics and granting ACLs is an administrator's job (a super user): `pipeline topics
create`, `pipeline acls apply`. Every command checks at start that the application's topics
exist and reads their configuration (derived topics are sized after their source's
`max.message.bytes`), so the producer, worker and API principals may also DESCRIBE and
DESCRIBE_CONFIGS every topic of the application; READ and WRITE imply DESCRIBE on their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Resource(StrEnum):
    """What an ACL is about."""

    TOPIC = "topic"
    GROUP = "group"
    TRANSACTIONAL_ID = "transactional_id"


class Operation(StrEnum):
    """What an ACL allows."""

    READ = "read"
    WRITE = "write"
    CREATE = "create"
    DESCRIBE = "describe"
    DESCRIBE_CONFIGS = "describe_configs"


class Pattern(StrEnum):
    """How an ACL's name matches: the name itself, or every name starting with it."""

    LITERAL = "literal"
    PREFIXED = "prefixed"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class AccessRule:
    """One ALLOW ACL: `principal` may `operation` on the `resource` named `name`."""

    principal: str
    resource: Resource
    pattern: Pattern
    name: str
    operation: Operation


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessLayout:
    """The topics and consumer groups the pipeline's principals use."""

    topics: tuple[str, ...]
    """Every topic the application owns (`pipeline topics create`)."""
    sources: tuple[str, ...]
    """Topics producers write and workers consume."""
    produced: tuple[str, ...] = ()
    """Topics producers write that no registered job reads yet (generated streams)."""
    retry_topics: tuple[str, ...]
    dead_letter_topics: tuple[str, ...]
    late_topics: tuple[str, ...]
    """Where records later than their window go."""
    outputs: tuple[str, ...]
    """Topics workers write for others (alerts)."""
    changelogs: tuple[str, ...]
    """Compacted reference topics: filled by Connect, read by workers."""
    worker_groups: tuple[str, ...]
    """Prefixes of the workers' consumer groups (`<prefix>-sensors`, its `.retry.N` groups)."""
    transactional_groups: tuple[str, ...] = ()
    """The consumer groups of jobs under Kafka authority: each member's transactional.id
    and each stateful step's changelog topic are named `<group>-…`."""
    live_group: str
    """Prefix of the API's live-view consumer groups."""
    connect_group: str
    """The Connect workers' group; their internal topics are `<group>-configs|offsets|status`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Principals:
    """The Kafka principal of each role (`User:name`); a role left None gets no ACLs."""

    producer: str | None = None
    worker: str | None = None
    api: str | None = None
    connect: str | None = None


def access_rules(layout: AccessLayout, principals: Principals) -> list[AccessRule]:
    """Every ACL the given principals need, sorted, without duplicates."""
    rules: set[AccessRule] = set()
    if principals.producer is not None:
        produced = (*layout.sources, *layout.produced)
        rules.update(_topics(principals.producer, produced, Operation.WRITE))
    if principals.worker is not None:
        worker = principals.worker
        rules.update(_topics(worker, layout.sources, Operation.READ))
        # A retry level's consumer forwards its records back to their source topic.
        rules.update(_topics(worker, layout.sources, Operation.WRITE))
        rules.update(_topics(worker, layout.late_topics, Operation.WRITE))
        rules.update(_topics(worker, layout.changelogs, Operation.READ))
        rules.update(_topics(worker, layout.retry_topics, Operation.READ))
        rules.update(_topics(worker, layout.retry_topics, Operation.WRITE))
        rules.update(_topics(worker, layout.dead_letter_topics, Operation.WRITE))
        rules.update(_topics(worker, layout.outputs, Operation.WRITE))
        rules.update(
            _rule(worker, Resource.GROUP, Pattern.PREFIXED, group, Operation.READ)
            for group in layout.worker_groups
        )
        for group in layout.transactional_groups:
            named = f"{group}-"
            rules.add(
                _rule(worker, Resource.TRANSACTIONAL_ID, Pattern.PREFIXED, named, Operation.WRITE)
            )
            # Changelog topics: created by the job's first worker, restored and written by all.
            for operation in (Operation.CREATE, Operation.READ, Operation.WRITE):
                rules.add(_rule(worker, Resource.TOPIC, Pattern.PREFIXED, named, operation))
    if principals.api is not None:
        api = principals.api
        rules.update(_topics(api, (*layout.sources, *layout.outputs), Operation.READ))
        rules.add(_rule(api, Resource.GROUP, Pattern.PREFIXED, layout.live_group, Operation.READ))
    for principal in (principals.producer, principals.worker, principals.api):
        if principal is not None:
            used = {rule.name for rule in rules if rule.principal == principal}
            unused = [topic for topic in layout.topics if topic not in used]
            rules.update(_topics(principal, unused, Operation.DESCRIBE))
            rules.update(_topics(principal, layout.topics, Operation.DESCRIBE_CONFIGS))
    if principals.connect is not None:
        connect, group = principals.connect, layout.connect_group
        rules.add(_rule(connect, Resource.GROUP, Pattern.LITERAL, group, Operation.READ))
        # The internal topics: created by the first worker, checked (cleanup policy) by all.
        internal = f"{group}-"
        for operation in Operation:
            if operation is not Operation.DESCRIBE:  # implied by the others
                rules.add(_rule(connect, Resource.TOPIC, Pattern.PREFIXED, internal, operation))
        rules.update(_topics(connect, layout.changelogs, Operation.WRITE))
    return sorted(rules)


def _topics(principal: str, names: Iterable[str], operation: Operation) -> list[AccessRule]:
    return [_rule(principal, Resource.TOPIC, Pattern.LITERAL, n, operation) for n in names]


def _rule(
    principal: str, resource: Resource, pattern: Pattern, name: str, operation: Operation
) -> AccessRule:
    return AccessRule(
        principal=principal, resource=resource, pattern=pattern, name=name, operation=operation
    )
