"""`pipeline acls show|apply`: the Kafka ACLs each principal of the pipeline needs, derived
from the settings (topic names, consumer group prefix, retry levels) and the registered jobs,
listed or granted."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from pipeline.application.access import AccessLayout, AccessRule, Principals, access_rules
from pipeline.application.kafka_authority import sink_topics
from pipeline.application.topic_names import dead_letter_topic, late_topic, retry_topic
from pipeline.entrypoints.arguments import kafka_missing
from pipeline.entrypoints.bootstrap import topic_specs
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.runtime import EXIT_OK, EXIT_USAGE
from pipeline.entrypoints.settings import Settings

DEFAULT_CONNECT_GROUP = "pipeline-connect"
_PRINCIPAL = re.compile(r"^User:[^\s*]+$")


def access_layout(
    settings: Settings, *, connect_group: str = DEFAULT_CONNECT_GROUP
) -> AccessLayout:
    """The topics and groups of the configured pipeline, as its ACLs see them: every
    registered job's sources, tables, outputs and consumer group (`<prefix>-<job>`), the
    retry topics of jobs under database authority, and the transactional ids and changelog
    topics of jobs under Kafka authority."""
    topics = settings.topics
    prefix = settings.worker.group_id_prefix
    levels = range(1, len(settings.retry.topic_delays_s) + 1)
    sources: dict[str, None] = {}
    tables: dict[str, None] = {topics.sensor_metadata: None}
    outputs: dict[str, None] = {topics.system_alerts: None}
    retries: dict[str, None] = {}
    groups: list[str] = []
    transactional: list[str] = []
    for name in sorted(JOBS):
        job = JOBS[name].build(settings)
        group = f"{prefix}-{name}"
        groups.append(group)  # also the prefix of its retry groups `<group>.retry.N`
        sources.update(dict.fromkeys(job.sources))
        tables.update(dict.fromkeys(job.tables))
        tables.update(dict.fromkeys(job.global_tables))
        sinks = sink_topics(job)
        if sinks is None:
            retries.update(dict.fromkeys(retry_topic(s, n) for s in job.sources for n in levels))
        else:
            outputs.update(dict.fromkeys(sinks.values()))
            transactional.append(group)
    generated = (
        topics.ecommerce_events,
        topics.transactions,
        topics.accounts,
        topics.payment_outcomes,
        topics.social_posts,
        topics.social_engagement,
    )
    return AccessLayout(
        topics=tuple(spec.name for spec in topic_specs(settings)),
        sources=tuple(sources),
        produced=tuple(t for t in generated if t not in sources),
        retry_topics=tuple(retries),
        dead_letter_topics=tuple(dead_letter_topic(s) for s in sources),
        late_topics=tuple(late_topic(s) for s in sources),
        outputs=tuple(outputs),
        changelogs=tuple(tables),
        worker_groups=tuple(groups),
        transactional_groups=tuple(transactional),
        live_group=f"{prefix}-live-",
        connect_group=connect_group,
    )


def principals_of(args: argparse.Namespace) -> Principals:
    """The principals named on the command line."""
    return Principals(
        producer=args.producer, worker=args.worker, api=args.api, connect=args.connect
    )


def format_rule(rule: AccessRule) -> str:
    """One ACL as a tab-separated line: principal, operation, resource, pattern, name."""
    return "\t".join(
        (rule.principal, rule.operation.upper(), rule.resource, rule.pattern, rule.name)
    )


def _rules(args: argparse.Namespace, settings: Settings) -> list[AccessRule] | None:
    principals = principals_of(args)
    if not any((principals.producer, principals.worker, principals.api, principals.connect)):
        sys.stderr.write(
            f"pipeline acls {args.acls_command}: error: name at least one principal "
            "(--producer, --worker, --api, --connect)\n"
        )
        return None
    return access_rules(access_layout(settings, connect_group=args.connect_group), principals)


async def cmd_acls_show(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline acls show`: print the ACLs, one per line."""
    rules = _rules(args, settings)
    if rules is None:
        return EXIT_USAGE
    for rule in rules:
        print(format_rule(rule))
    return EXIT_OK


async def cmd_acls_apply(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline acls apply`: grant the ACLs (as a principal allowed to: an administrator)."""
    rules = _rules(args, settings)
    if rules is None:
        return EXIT_USAGE
    if kafka_missing("acls apply", settings):
        return EXIT_USAGE
    from pipeline.adapters.kafka.acls import KafkaAccessControl  # noqa: PLC0415 - Kafka only here

    kafka = settings.kafka
    control = KafkaAccessControl(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "client.id": kafka.client_id,
            **kafka.client_config(),
        }
    )
    await control.grant(rules)
    print(f"{len(rules)} ACLs granted")
    return EXIT_OK


def principal(text: str) -> str:
    """argparse type: a Kafka principal, `User:name`."""
    if not _PRINCIPAL.match(text):
        raise argparse.ArgumentTypeError(f"not a principal of the form User:name: {text!r}")
    return text


def add_acls_commands(commands: Any) -> None:
    """Add `acls show|apply` to the `pipeline` subcommands."""
    acls = commands.add_parser("acls", help="the Kafka ACLs of the pipeline's principals")
    acl_commands = acls.add_subparsers(dest="acls_command", required=True, metavar="ACTION")
    for name, run, description in (
        ("show", cmd_acls_show, "print the ACLs each named principal needs"),
        ("apply", cmd_acls_apply, "grant them on the Kafka cluster (as an administrator)"),
    ):
        command = acl_commands.add_parser(name, help=description)
        command.add_argument("--producer", type=principal, help="e.g. User:producer")
        command.add_argument("--worker", type=principal, help="e.g. User:worker")
        command.add_argument("--api", type=principal, help="e.g. User:api")
        command.add_argument("--connect", type=principal, help="e.g. User:connect")
        command.add_argument(
            "--connect-group",
            default=DEFAULT_CONNECT_GROUP,
            help=f"group.id of the Connect workers (default {DEFAULT_CONNECT_GROUP})",
        )
        command.set_defaults(run=run)
