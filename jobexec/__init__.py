"""jobexec: the executor service for scheduled jobs: Kafka JobEvents in, outcomes in SQL."""
