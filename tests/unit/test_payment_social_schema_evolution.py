"""Transaction v2 and Post v2 evolve their v1 compatibly: the v2 readers the producers and
jobs use read records written with v1 (BACKWARD), and v1 readers read v2 posts and v2
transactions of the v1 channels (a `transfer` is the one symbol v1 cannot read)."""

from __future__ import annotations

import fastavro
import pytest

from pipeline.adapters.avro import (
    POST,
    POST_V1,
    TRANSACTION,
    TRANSACTION_V1,
    compatibility_problem,
    load_schema,
)
from pipeline.adapters.avro.mapping import (
    post_from_avro,
    post_to_avro,
    transaction_from_avro,
    transaction_to_avro,
)
from tests.avro_events import post, rewritten, transaction, transfer


def test_v2_schemas_are_backward_compatible_with_v1() -> None:
    assert (
        compatibility_problem("BACKWARD", load_schema(TRANSACTION), [load_schema(TRANSACTION_V1)])
        is None
    )
    assert compatibility_problem("FULL", load_schema(POST), [load_schema(POST_V1)]) is None


def test_a_v1_transaction_reads_as_v2_with_no_merchant_category() -> None:
    v1_record = {
        k: v for k, v in transaction_to_avro(transaction()).items() if k != "merchant_category"
    }

    read = transaction_from_avro(rewritten(v1_record, TRANSACTION_V1, TRANSACTION))

    assert read == transaction()
    assert read.merchant_category is None


def test_a_v1_reader_reads_v2_transactions_of_v1_channels_but_not_transfers() -> None:
    assert (
        rewritten(transaction_to_avro(transaction()), TRANSACTION, TRANSACTION_V1)["channel"]
        == "pos"
    )
    with pytest.raises(fastavro.read.SchemaResolutionError, match="transfer"):
        rewritten(transaction_to_avro(transfer()), TRANSACTION, TRANSACTION_V1)


def test_posts_read_across_versions_with_mentions_defaulting_to_none() -> None:
    v1_record = {k: v for k, v in post_to_avro(post()).items() if k != "mentions"}

    assert post_from_avro(rewritten(v1_record, POST_V1, POST)).mentions == ()
    assert "mentions" not in rewritten(post_to_avro(post()), POST, POST_V1)
