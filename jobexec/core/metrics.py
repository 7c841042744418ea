"""Prometheus metrics of every jobexec process, named `jobexec_<process>_<what>`.

Celery's prefork children each count their own jobs: `jobexec worker` points prometheus-client's
multiprocess mode at a private folder, and the parent serves the sum.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# --- bridge ---------------------------------------------------------------------------------
RECORDS_CONSUMED = Counter("jobexec_bridge_records_consumed", "Kafka records consumed")
TASKS_ENQUEUED = Counter("jobexec_bridge_tasks_enqueued", "Celery tasks accepted by the broker")
# reason: poison (bridge), exhausted (worker), abandoned (sweeper: tries spent, worker gone).
DEAD_LETTERED = Counter(
    "jobexec_dead_lettered", "Records written to the dead-letter topic", ["reason"]
)
COMMITS = Counter("jobexec_bridge_commits", "Offset commits", ["result"])
CONSUMER_LAG = Gauge(
    "jobexec_bridge_consumer_lag",
    "Records behind the partition end",
    ["topic", "partition"],
    multiprocess_mode="max",
)
PAUSE_REASONS = ("broker_down", "backpressure")
QUEUE_DEPTH = Gauge(
    "jobexec_bridge_queue_depth",
    "Messages waiting in each Celery queue the bridge fills, as last measured",
    ["queue"],
    multiprocess_mode="max",
)
PAUSED = Gauge(
    "jobexec_bridge_paused",
    "1 while the partitions are paused",
    ["reason"],
    multiprocess_mode="max",
)

# --- scheduler ------------------------------------------------------------------------------
DISPATCHED = Counter("jobexec_scheduler_dispatched", "JobEvents published", ["source"])

# --- workers --------------------------------------------------------------------------------
OUTCOMES = Counter("jobexec_job_outcomes", "Tries by task and result", ["task", "result"])
RUN_SECONDS = Histogram(
    "jobexec_job_run_seconds",
    "Executor run time per try",
    ["task"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
# reason: concurrency (the task's cap is reached; the try waits at the same attempt).
DEFERRED = Counter(
    "jobexec_job_deferred", "Tries deferred without spending an attempt", ["task", "reason"]
)
RETRIES = Counter("jobexec_job_retries", "Tries that failed transiently and were retried", ["task"])

# --- history retention (scheduler and workers) ----------------------------------------------
HISTORY_PRUNED = Counter(
    "jobexec_history_pruned", "Finished history rows deleted by retention", ["table"]
)
