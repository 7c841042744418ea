"""The job database: schema, engine, named queries and migrations."""
