"""`jobexec console`: the operator's web console over the jobs table, the run history and the
dead-letter topic. Server-rendered pages (Starlette and Jinja2, no JavaScript), served by
uvicorn, behind basic auth; actions are CSRF-protected POSTs through the CLI's own commands."""
