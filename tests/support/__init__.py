"""Test support: real services (Tansu, PostgreSQL, Redis, an HTTP recorder) and CLI processes.

The fixtures in `tests/conftest.py` are thin wrappers around the classes here, so a test that
needs something slightly different can build it from the same parts.
"""
