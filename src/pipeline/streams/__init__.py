"""The stream engine: jobs of typed steps over event time, with keyed state.

Standard library only and free of I/O: the application's runtime feeds a `Task` batches
of decoded records and makes what it returns durable (sinks, dead letters, late records,
state changes) together with the consumed offsets. `pipeline.streams.testing` drives the
same job deterministically in memory.
"""

from pipeline.streams.aggregates import (
    Aggregate,
    Aggregates,
    Collect,
    Count,
    DistinctCount,
    Max,
    Mean,
    Min,
    RunningStats,
    Stats,
    StatsResult,
    Sum,
    TopK,
)
from pipeline.streams.items import (
    Item,
    KeyedBatch,
    Late,
    Rejection,
    Tombstone,
    Window,
    Windowed,
    from_millis,
    to_millis,
)
from pipeline.streams.job import (
    GlobalTable,
    Job,
    JobDefinitionError,
    JoinedStream,
    Plan,
    Sink,
    Stream,
    Table,
)
from pipeline.streams.ranking import Ranking
from pipeline.streams.state import StateChange
from pipeline.streams.task import Output, Task
from pipeline.streams.windows import Hopping, Session, Sliding, Tumbling

__all__ = [
    "Aggregate",
    "Aggregates",
    "Collect",
    "Count",
    "DistinctCount",
    "GlobalTable",
    "Hopping",
    "Item",
    "Job",
    "JobDefinitionError",
    "JoinedStream",
    "KeyedBatch",
    "Late",
    "Max",
    "Mean",
    "Min",
    "Output",
    "Plan",
    "Ranking",
    "Rejection",
    "RunningStats",
    "Session",
    "Sink",
    "Sliding",
    "StateChange",
    "Stats",
    "StatsResult",
    "Stream",
    "Sum",
    "Table",
    "Task",
    "Tombstone",
    "TopK",
    "Tumbling",
    "Window",
    "Windowed",
    "from_millis",
    "to_millis",
]
