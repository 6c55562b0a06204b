"""The generic runtime every job runs on: the consumer loop (`consumer_loop`), waiting out
outages with the partitions paused (`pausing`, `in_place_retry`), the job handler that runs
a job's `Task` under database authority (`handler`), isolating poison rows (`poison`),
retry levels that forward records back (`retry_forwarding`), statistics and reports, and
`run_job` (`runner`). It knows jobs, records and outcomes — never readings or orders (an
import-linter contract checks it)."""
