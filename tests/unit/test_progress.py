"""The live status line: log lines print above it in a terminal instead of breaking it, its
rate is taken over a window long enough to span the worker's batches, and every figure of the
demo's status line and summary says what it counts."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections import Counter

import pytest
import structlog

from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.demo import status_text, summary_text
from pipeline.entrypoints.logging import configure_logging
from pipeline.entrypoints.progress import RateMeter, StatusLine


class Terminal(io.StringIO):
    """A terminal: what it shows after carriage returns and erase-to-end-of-line."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        lines, column = [""], 0
        # Colours (SGR sequences) take no room; erase-to-end-of-line becomes one mark.
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.getvalue()).replace("\x1b[K", "\0")
        for char in text:
            if char == "\r":
                column = 0
            elif char == "\0":
                lines[-1] = lines[-1][:column]
            elif char == "\n":
                lines.append("")
                column = 0
            else:
                line = lines[-1]
                lines[-1] = line[:column] + char + line[column + 1 :]
                column += 1
        return lines


def stderr_on(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `stream` stderr, and the entrypoints' logging write to it. Called in the test
    itself: pytest's capture puts its own stderr back between a fixture and the test."""
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("INFO", "console")
    # What `logging.basicConfig` in configure_logging adds, but not under pytest, whose own
    # handler on the root logger makes basicConfig do nothing.
    logging.getLogger().addHandler(logging.StreamHandler(stream))


def test_log_lines_print_above_the_status_line_in_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal()
    stderr_on(terminal, monkeypatch)
    status = StatusLine()
    status.update("1,000 readings/s", force=True)

    with status.logs_above():
        structlog.get_logger("pipeline.live").info("live feed reading", group="g-1")
        logging.getLogger("uvicorn.error").warning("client gone")
        status.update("2,000 readings/s", force=True)
        structlog.get_logger("pipeline.live").info("live feed stopped")
    status.done()

    screen = terminal.screen()
    assert [line.split()[-1] for line in screen[:3]] == ["group=g-1", "gone", "stopped"]
    assert "live feed reading" in screen[0]
    assert screen[3:] == ["2,000 readings/s", ""]


def test_output_printed_elsewhere_goes_above_the_status_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal()
    stderr_on(terminal, monkeypatch)
    status = StatusLine()
    stdout = terminal  # stdout and stderr on one terminal
    status.update("status", force=True)

    status.print("Dashboard: http://127.0.0.1:8000/", stdout)

    assert terminal.screen() == ["Dashboard: http://127.0.0.1:8000/", "status"]


def test_logs_go_straight_to_the_stream_again_after_the_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal()
    stderr_on(terminal, monkeypatch)
    status = StatusLine()
    with status.logs_above():
        pass
    status.update("status", force=True)
    status.done()

    structlog.get_logger().info("after")

    assert "after" in terminal.screen()[1]


def test_when_not_a_terminal_status_and_logs_are_plain_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    piped = io.StringIO()
    stderr_on(piped, monkeypatch)
    status = StatusLine()

    with status.logs_above():
        status.update("status 1", force=True)
        structlog.get_logger().info("a log line")
        status.update("status 2", force=True)

    lines = piped.getvalue().splitlines()
    assert lines[0] == "status 1"
    assert "a log line" in lines[1]
    assert lines[2] == "status 2"
    assert "\r" not in piped.getvalue()


def test_the_rate_spans_the_worker_batches_instead_of_showing_zero_between_them() -> None:
    meter = RateMeter(window=10.0)
    shown = []
    # A batch of 1,000 readings completes every second; the status samples every 0.5 s.
    for tick in range(60):
        now = tick * 0.5
        meter.add(1_000 * int(now), now)
        shown.append(meter.rate())

    assert min(shown[4:]) > 0
    assert shown[-1] == pytest.approx(1_000, rel=0.06)


def test_the_rate_forgets_what_is_older_than_its_window() -> None:
    meter = RateMeter(window=10.0)
    for second in range(32):
        total = 100 * second if second < 20 else 2_000  # stalled after 20 s
        meter.add(total, float(second))

    assert meter.rate() == 0.0


def test_the_demo_status_line_says_which_figures_are_this_run_and_which_all_runs() -> None:
    stats = WorkerStats(records=60, written=Counter(readings=50), events=3, rejected=Counter(x=10))

    text = status_text(1234.4, stats, lag=7, earlier_readings=100)

    assert text.split(" | ") == [
        "  1,234 readings/s (last 10 s)",
        "this run: 50 stored, 3 alerts, 10 rejected",
        "lag 7",
        "database: 150 readings, all runs",
    ]


def test_the_demo_summary_separates_this_run_from_the_database_totals() -> None:
    stats = WorkerStats(records=60, written=Counter(readings=50), events=3, rejected=Counter(x=10))

    text = summary_text(stats, elapsed=2.0, database="sqlite:///d.db", readings=150, alerts=9)

    assert text.splitlines() == [
        "demo summary: this run processed 60 readings in 2.0 s (30/s): 50 stored, 10 rejected, "
        "3 alerts raised",
        "database sqlite:///d.db: 150 readings and 9 alerts stored by all runs",
    ]
