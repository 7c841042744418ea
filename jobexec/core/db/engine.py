"""Engine creation from the settings: JDBC or SQLAlchemy URLs, credentials from secrets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from jobexec.core.config import ConfigError, Settings
from jobexec.core.db.jdbc import JdbcUrlError, parse_jdbc
from jobexec.core.masking import mask_url
from jobexec.core.sections import JobDbSection

_URL_KEY = "configs.jobDb.url"


def database_url(settings: Settings) -> URL:
    """The SQLAlchemy URL of the job database, credentials included (never log it unmasked)."""
    text: str = settings.require(_URL_KEY)
    if text.startswith("jdbc:"):
        url = _from_jdbc(text.removeprefix("jdbc:"), settings)
    else:
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            problem = "is not a JDBC or SQLAlchemy URL"
            raise ConfigError(_URL_KEY, problem, settings.source(_URL_KEY)) from None
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    if not url.drivername.startswith(("postgresql", "sqlite")):
        raise ConfigError(
            _URL_KEY, f"names an unsupported database {url.drivername!r}", settings.source(_URL_KEY)
        )
    _check_driver(url, settings)
    if url.get_backend_name() == "sqlite":
        return url  # a file: database credentials do not apply
    db = JobDbSection.from_settings(settings)
    username, password = db.username, db.password
    if username and not url.username:
        url = url.set(username=username)
    if password and not url.password:
        url = url.set(password=password)
    return url


def _check_driver(url: URL, settings: Settings) -> None:
    # Import the driver now: a missing one is a setting to fix, not a traceback at connect.
    try:
        url.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError):
        problem = f"names the driver {url.drivername!r}, which is not installed"
        hint = " (use postgresql+psycopg:// or sqlite:///)"
        raise ConfigError(_URL_KEY, problem + hint, settings.source(_URL_KEY)) from None


def _from_jdbc(rest: str, settings: Settings) -> URL:
    # PgJDBC's form, several hosts and JDBC parameters included (jobexec/core/db/jdbc.py).
    try:
        parsed = parse_jdbc(rest)
    except JdbcUrlError as exc:
        raise ConfigError(_URL_KEY, str(exc), settings.source(_URL_KEY)) from None
    return parsed.sqlalchemy_url(JobDbSection.from_settings(settings).name)


def make_engine(url: URL, pre_ping: bool = True, **kwargs: Any) -> Engine:
    """An engine that survives restarts: pre-ping on checkout, WAL and a busy timeout on SQLite."""
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=5, max_overflow=5, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def masked(url: URL) -> str:
    """The URL as logs and messages show it: password and secret query values hidden."""
    return mask_url(url.render_as_string(hide_password=False))


__all__ = ["database_url", "make_engine", "masked"]
