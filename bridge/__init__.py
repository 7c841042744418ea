"""The Kafka side: consume JobEvents, enqueue Celery tasks, dead-letter poison records."""
