"""What anomaly scoring costs the sensors job itself, without Kafka or a database: the job
(the engine's `Task`, batches of `--batch` readings, a checkpoint's state changes taken after
each) over one generated backlog, with scoring off and with a fitted Isolation Forest,
alternated, printing each run's CPU seconds and readings per CPU second, its wall-clock
seconds, and the share kept of each.

    uv run python benchmarks/anomaly_scoring_cost.py --pairs 3 --events 100000

Only the `--events` readings are timed, after every sensor's warm-up (`WARMUP` readings
each, plus one, processed first and not timed): every timed reading is scored, as in a
worker that has been running a while. Timing from a cold start instead would leave
`sensors × WARMUP` readings unscored (with 1,000 sensors and 50,000 readings, 60% of them).

A benchmark that prints figures, not a test. It isolates the job's share of a worker's work:
the worker also polls, decodes and writes every reading, which scoring does not add to, so
the share a whole worker keeps (`pipeline bench sensors --ml`) is higher than this one."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from pipeline.adapters.model import trainer_for
from pipeline.application.ports.model import ScoringModel
from pipeline.application.scoring import LiveModel
from pipeline.domain import DEFAULT_CATALOG
from pipeline.domain.sensor_columns import ReadingRow, row_of
from pipeline.entrypoints import evaluate_sensors
from pipeline.jobs.sensor_anomalies import WARMUP, feature_names
from pipeline.jobs.sensors import SensorJobConfig, sensor_job
from pipeline.streams import Task, to_millis

TOPIC = evaluate_sensors.TOPIC


def job_cpu(
    warm_up: Sequence[ReadingRow],
    readings: Sequence[ReadingRow],
    model: ScoringModel | None,
    batch: int,
) -> tuple[float, float, int]:
    """CPU and wall-clock seconds of the sensors job over `readings` after `warm_up` (not
    timed), scoring with `model` (none: off), and how many of `readings` were scored."""
    live = None if model is None else LiveModel(model)
    task = Task(sensor_job(SensorJobConfig(topic=TOPIC, scoring=live)).plan())
    task.assign(0, {}, to_millis(evaluate_sensors.START))

    def run(rows: Sequence[ReadingRow]) -> None:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            now = to_millis(chunk[-1].timestamp) + 1_000
            task.process([(TOPIC, 0, r, None) for r in chunk], now)
            task.changes()

    run(warm_up)
    before = 0 if live is None else live.scored
    started, wall = time.process_time(), time.perf_counter()
    run(readings)
    cpu, wall = time.process_time() - started, time.perf_counter() - wall
    return cpu, wall, 0 if live is None else live.scored - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--sensors", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=5_000, help="the worker's default batch")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    # Rows, as the worker decodes them; the first ones warm every sensor up, untimed.
    skip = args.sensors * (WARMUP + 1)
    rows = [
        row_of(r)
        for r in evaluate_sensors.generated_readings(
            events=skip + args.events, seed=3, sensors=args.sensors
        )
    ]
    warm_up, readings = rows[:skip], rows[skip:]
    # Fitted as `pipeline bench sensors --ml` fits its forest.
    sample = evaluate_sensors.training_sample(
        evaluate_sensors.generated_readings(events=20_000, seed=7, sensors=100), 0.03
    )
    features = feature_names(DEFAULT_CATALOG)
    forest = trainer_for("forest", features=features, contamination=0.03).fit(sample, version="f")
    kept: list[float] = []
    walls: list[float] = []
    for pair in range(1, args.pairs + 1):
        off, off_wall, _ = job_cpu(warm_up, readings, None, args.batch)
        on, on_wall, scored = job_cpu(warm_up, readings, forest, args.batch)
        kept.append(off / on)
        walls.append(off_wall / on_wall)
        print(
            f"pair {pair}: scoring off {off:.2f} s CPU ({args.events / off:,.0f} readings per "
            f"CPU second), forest {on:.2f} s CPU ({args.events / on:,.0f}; {scored:,} of "
            f"{args.events:,} readings scored): kept {off / on:.0%}; wall {off_wall:.2f} s and "
            f"{on_wall:.2f} s: kept {off_wall / on_wall:.0%}"
        )
    print(
        f"median share kept: {statistics.median(kept):.0%} per CPU second, "
        f"{statistics.median(walls):.0%} of the throughput (wall)"
    )


if __name__ == "__main__":
    main()
