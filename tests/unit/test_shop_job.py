"""The shop job on the deterministic driver: sessions, the funnel, revenue, top products,
the conversion-drop alert, dead letters and late events."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from pipeline.domain import AlertDomain, AlertKind, Severity, alert_id_for
from pipeline.domain.shop_analytics import (
    ConversionRule,
    FunnelCounts,
    FunnelStage,
    SessionOutcome,
)
from pipeline.jobs.shop import ShopJobConfig, shop_job
from pipeline.streams.testing import TestDriver
from tests.shop_events import T0, a_cart, a_purchase, a_search, a_view

TOPIC = "ecommerce-events"
MIN = timedelta(minutes=1)
GRACE = timedelta(seconds=60)


def driver(*, partitions: int = 1, now: datetime | None = None, **config: object) -> TestDriver:
    job = shop_job(ShopJobConfig(topic=TOPIC, window_grace=GRACE, **config))  # type: ignore[arg-type]
    return TestDriver(job, partitions=partitions, now=now or T0 + timedelta(hours=3))


def close_everything(d: TestDriver) -> None:
    """Let the idle partitions' watermarks follow the wall clock past every window."""
    d.run()
    d.advance(timedelta(minutes=1))


# ---------------------------------------------------------------------- sessions


def test_a_session_closes_after_its_gap_with_its_events_duration_stage_and_outcome() -> None:
    d = driver()
    d.send_all(
        TOPIC,
        [
            a_search("s1", T0),
            a_view("s1", T0 + 2 * MIN),
            a_cart("s1", T0 + 5 * MIN),
            a_purchase("s1", T0 + 9 * MIN, ("prod-00001", 2, "10.50"), currency="GBP"),
        ],
    )
    close_everything(d)
    [session] = d.results("shop_sessions")
    assert (session.session_id, session.user_id) == ("s1", "user-of-s1")
    assert (session.started_at, session.ended_at) == (T0, T0 + 9 * MIN)
    assert session.duration == 9 * MIN
    assert (session.events, session.stage, session.outcome) == (
        4,
        FunnelStage.PURCHASED,
        SessionOutcome.BOUGHT,
    )
    assert (session.orders, session.revenue, session.currency) == (1, Decimal("21.00"), "GBP")


def test_sessions_that_stop_at_the_cart_are_abandoned_and_at_a_view_browsed() -> None:
    d = driver()
    d.send_all(TOPIC, [a_view("s1", T0), a_cart("s1", T0 + MIN), a_view("s2", T0)])
    close_everything(d)
    outcomes = {s.session_id: s.outcome for s in d.results("shop_sessions")}
    assert outcomes == {"s1": SessionOutcome.ABANDONED, "s2": SessionOutcome.BROWSED}


def test_events_more_than_the_gap_apart_are_two_sessions_and_a_bridging_event_merges_them() -> None:
    apart = driver()
    apart.send_all(TOPIC, [a_view("s1", T0), a_view("s1", T0 + 40 * MIN)])
    close_everything(apart)
    assert [s.events for s in apart.results("shop_sessions")] == [1, 1]

    bridged = driver()
    last = T0 + 30 * MIN + timedelta(seconds=30)  # the first closes at 30 min + grace
    bridged.send_all(TOPIC, [a_view("s1", T0), a_view("s1", last)])
    bridged.run()  # both sessions open: the watermark is at the second event
    bridged.send(TOPIC, a_cart("s1", T0 + 15 * MIN))  # within 30 min of both
    close_everything(bridged)
    [session] = bridged.results("shop_sessions")
    assert (session.started_at, session.ended_at, session.events) == (T0, last, 3)
    assert session.stage is FunnelStage.CARTED


def test_a_session_stays_open_until_the_watermark_passes_its_gap_and_grace() -> None:
    d = driver(now=T0 + 40 * MIN)
    d.send(TOPIC, a_view("s1", T0))
    d.send(TOPIC, a_view("s2", T0 + 30 * MIN))  # moves the watermark to T0 + 30 min
    d.run()
    assert d.results("shop_sessions") == []  # s1 closes at T0 + 30 min + grace
    d.send(TOPIC, a_view("s3", T0 + 31 * MIN))
    d.run()
    assert [s.session_id for s in d.results("shop_sessions")] == ["s1"]


# ---------------------------------------------------------------------- funnel


def test_the_funnel_counts_each_stage_per_five_minutes_with_its_rates() -> None:
    d = driver()
    events = [a_search("s0", T0)]
    events += [a_view(f"s{i}", T0 + MIN) for i in range(10)]
    events += [a_cart(f"s{i}", T0 + 2 * MIN) for i in range(4)]
    events += [a_purchase("s0", T0 + 3 * MIN, ("prod-00001", 1, "5"))]
    events += [a_view("s9", T0 + 6 * MIN)]  # the next window
    d.send_all(TOPIC, events)
    close_everything(d)
    rows = sorted(d.results("shop_funnel_5m"), key=lambda r: r.window_start)
    assert [(r.window_start, r.window_end, r.partition) for r in rows] == [
        (T0, T0 + 5 * MIN, 0),
        (T0 + 5 * MIN, T0 + 10 * MIN, 0),
    ]
    first = rows[0].counts
    assert first == FunnelCounts(searches=1, views=10, carts=4, purchases=1)
    assert (first.cart_rate, first.purchase_rate, first.conversion_rate) == (0.4, 0.25, 0.1)
    assert rows[1].counts == FunnelCounts(views=1)
    assert rows[1].counts.purchase_rate is None


def test_each_partition_writes_its_own_funnel_row_for_a_window() -> None:
    d = driver(partitions=2)
    sessions = [f"s{i}" for i in range(8)]
    d.send_all(TOPIC, [a_view(s, T0) for s in sessions])
    close_everything(d)
    rows = d.results("shop_funnel_5m")
    assert sorted(r.partition for r in rows) == [0, 1]
    assert sum(r.counts.views for r in rows) == 8


# ---------------------------------------------------------------------- revenue


def test_revenue_is_summed_per_minute_and_currency_exactly() -> None:
    d = driver()
    d.send_all(
        TOPIC,
        [
            a_purchase("s1", T0 + timedelta(seconds=5), ("prod-00001", 3, "0.10")),
            a_purchase("s2", T0 + timedelta(seconds=50), ("prod-00002", 1, "0.20")),
            a_purchase(
                "s3", T0 + timedelta(seconds=55), ("prod-00002", 1, "12.00"), currency="USD"
            ),
            a_purchase("s4", T0 + MIN, ("prod-00003", 1, "1.00")),
        ],
    )
    close_everything(d)
    rows = {(r.minute, r.currency): (r.revenue, r.orders) for r in d.results("shop_revenue_1m")}
    assert rows == {
        (T0, "EUR"): (Decimal("0.50"), 2),
        (T0, "USD"): (Decimal("12.00"), 1),
        (T0 + MIN, "EUR"): (Decimal("1.00"), 1),
    }


# ---------------------------------------------------------------------- top products


def test_top_products_rank_the_hours_revenue_in_euros_every_minute() -> None:
    d = driver()
    purchases = [
        # prod-00002 sells 108 USD = 100 EUR, more than prod-00001's 60 EUR
        a_purchase("s1", T0 + 10 * MIN, ("prod-00001", 2, "30.00")),
        a_purchase("s2", T0 + 20 * MIN, ("prod-00002", 1, "108.00"), currency="USD"),
    ]
    purchases += [
        a_purchase(f"t{i}", T0 + 30 * MIN, (f"prod-1{i:04d}", 1, "1.00")) for i in range(12)
    ]
    d.send_all(TOPIC, purchases)
    close_everything(d)
    rows = d.results("shop_top_products_1h")
    # The hour from T0: every purchase lies in it.
    hour = sorted((r for r in rows if r.window_start == T0), key=lambda r: r.rank)
    assert [r.rank for r in hour] == list(range(1, 11))
    assert [(r.product_id, r.sales.revenue_eur, r.sales.units) for r in hour[:2]] == [
        ("prod-00002", Decimal("100.00"), 1),
        ("prod-00001", Decimal("60.00"), 2),
    ]
    # ties at 1 EUR are broken by product id; two of the twelve do not make the top ten
    assert [r.product_id for r in hour[2:]] == [f"prod-1{i:04d}" for i in range(8)]
    # Hopping: a window every minute; the one starting at T0 + 25 min lacks the first two.
    later = sorted((r for r in rows if r.window_start == T0 + 25 * MIN), key=lambda r: r.rank)
    assert [r.product_id for r in later][:2] == ["prod-10000", "prod-10001"]
    assert all(r.window_end - r.window_start == timedelta(hours=1) for r in rows)


# ---------------------------------------------------------------------- the alert

RULE = ConversionRule(recent_windows=3, drop_ratio=0.3, min_views=10, min_recent_purchases=3)


def steady_then(d: TestDriver, *, purchases_in_last: int) -> None:
    """Three windows of 20 views and 2 purchases, then one of 20 views and
    `purchases_in_last` purchases."""
    for w in range(4):
        start = T0 + w * 5 * MIN
        d.send_all(TOPIC, [a_view(f"w{w}s{i}", start + MIN) for i in range(20)])
        bought = 2 if w < 3 else purchases_in_last
        d.send_all(
            TOPIC,
            [
                a_purchase(f"w{w}s{i}", start + 2 * MIN, ("prod-00001", 1, "5"))
                for i in range(bought)
            ],
        )
    close_everything(d)


def test_a_conversion_rate_far_below_its_recent_level_raises_one_shop_alert() -> None:
    d = driver(conversion=RULE)
    steady_then(d, purchases_in_last=0)
    [alert] = d.results("alerts")
    window = T0 + 15 * MIN
    assert alert.alert_id == alert_id_for("shop", window, AlertKind.CONVERSION_DROP)
    assert (alert.kind, alert.domain, alert.severity) == (
        AlertKind.CONVERSION_DROP,
        AlertDomain.SHOP,
        Severity.CRITICAL,
    )
    assert alert.timestamp == window
    assert alert.value == 0.0
    assert alert.threshold == 0.1  # 6 purchases of 60 views before it
    assert alert.reasons == ("conversion_drop",)


def test_a_conversion_rate_near_its_recent_level_raises_nothing() -> None:
    d = driver(conversion=RULE)
    steady_then(d, purchases_in_last=1)  # 5 % against 10 %: above 0.3 × 10 %
    assert d.results("alerts") == []


def test_too_few_recent_purchases_to_judge_raise_nothing() -> None:
    d = driver(conversion=ConversionRule(recent_windows=3, min_views=10, min_recent_purchases=7))
    steady_then(d, purchases_in_last=0)
    assert d.results("alerts") == []


# ---------------------------------------------------------------------- bad and late input


def test_invalid_events_are_dead_letters_named_by_their_rule() -> None:
    d = driver()
    d.send_all(
        TOPIC,
        [
            a_view("s4", T0),
            a_view("s1", T0, product=""),
            a_purchase("s2", T0, ("prod-00001", 1, "5"), currency="JPY"),
            a_view("s3", d.now + timedelta(hours=1)),
        ],
    )
    close_everything(d)
    assert [r.rule for r in d.rejections] == [
        "invalid_shop_event",
        "unsupported_currency",
        "shop_event_in_future",
    ]
    assert [s.session_id for s in d.results("shop_sessions")] == ["s4"]


def test_an_event_for_closed_windows_is_late_and_changes_no_result() -> None:
    d = driver(now=T0 + 10 * MIN)
    d.send(TOPIC, a_view("s1", T0))
    d.send(TOPIC, a_view("s2", T0 + 7 * MIN))  # the funnel window of T0 closes at 6 min
    d.run()
    [first] = d.results("shop_funnel_5m")
    d.send(TOPIC, a_view("s3", T0 + MIN))
    d.run()
    assert {late.step for late in d.late} == {"funnel-5m"}
    assert d.results("shop_funnel_5m") == [first]
    assert first.counts.views == 1


def test_a_crash_before_the_checkpoint_changes_no_result() -> None:
    events = [a_view(f"s{i}", T0 + i * MIN) for i in range(8)]
    events += [a_purchase("s1", T0 + 3 * MIN, ("prod-00001", 1, "5"))]
    reference = driver()
    reference.send_all(TOPIC, events)
    close_everything(reference)

    crashed = driver()
    crashed.send_all(TOPIC, events[:4])
    crashed.run()
    crashed.send_all(TOPIC, events[4:])
    crashed.run(commit=False)
    crashed.crash()
    close_everything(crashed)
    for sink in ("shop_sessions", "shop_funnel_5m", "shop_revenue_1m", "shop_top_products_1h"):
        assert crashed.results(sink) == reference.results(sink), sink
