"""The core every process shares: settings, JobEvents, the job database, Kafka, metrics, logs.

It imports nothing of bridge/, workers/, executors/, scheduling/ or the command line
(`lint-imports` checks it), so any of them can build on it.
"""
