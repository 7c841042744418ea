"""What an operator does to jobs and dead letters (submit, retry, cancel, pause, resume, replay),
shared by the `jobexec jobs`/`jobexec dlq` commands and the console."""
