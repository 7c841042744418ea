"""PgJDBC URLs as libpq/psycopg understand them: several hosts, and the common JDBC parameters.

`jdbc:postgresql://db1:5432,db2:5432/jobs?targetServerType=primary&currentSchema=app` becomes
`postgresql+psycopg:///jobs?host=db1:5432&host=db2:5432&target_session_attrs=primary&options=...`
(SQLAlchemy's psycopg dialect takes several hosts as repeated `host=` parameters).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from sqlalchemy import URL

log = logging.getLogger("jobexec.db")

# PgJDBC's targetServerType -> libpq's target_session_attrs (PostgreSQL 14 libpq and later).
_TARGET_SERVER_TYPES = {
    "any": "any",
    "primary": "primary",
    "master": "primary",
    "secondary": "standby",
    "slave": "standby",
    "standby": "standby",
    "prefersecondary": "prefer-standby",
    "preferslave": "prefer-standby",
    "preferstandby": "prefer-standby",
    # libpq has no prefer-primary: hosts are tried in order and the first that answers is used.
    "preferprimary": "any",
}
# Parameters whose name and meaning are the same in PgJDBC and libpq.
_SAME_IN_LIBPQ = {"sslmode", "sslrootcert", "sslcert", "sslkey", "options"}


class JdbcUrlError(ValueError):
    """The JDBC URL cannot be read; the message never contains the URL (it may hold a password)."""


@dataclass
class JdbcUrl:
    """The parts of a PgJDBC URL, its parameters already mapped to libpq's names."""

    hosts: list[tuple[str, int | None]]
    database: str | None
    username: str | None = None
    password: str | None = None
    libpq: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def sqlalchemy_url(self, default_database: str) -> URL:
        """The psycopg URL: one host in the URL's host part, several as repeated `host=`."""
        query: dict[str, str | tuple[str, ...]] = dict(self.libpq)
        host: str | None = None
        port: int | None = None
        if len(self.hosts) == 1:
            host, port = self.hosts[0]
        else:
            query["host"] = tuple(f"{h}:{p or 5432}" for h, p in self.hosts)
        return URL.create(
            "postgresql+psycopg",
            username=self.username,
            password=self.password,
            host=host,
            port=port,
            database=self.database or default_database,
            query=query,
        )


def parse_jdbc(url: str) -> JdbcUrl:
    """Read `postgresql://host[:port][,host[:port]...]/[database][?params]` (after `jdbc:`)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "postgresql":
        name = scheme if sep else url.partition(":")[0]
        raise JdbcUrlError(f"names an unsupported JDBC database {name!r}")
    authority, _, path_query = rest.partition("/")
    path, _, query = path_query.partition("?")
    if "?" in authority:  # jdbc:postgresql://host?ssl=true, no slash before the parameters
        authority, _, query = authority.partition("?")
    hosts = [_host_port(part) for part in authority.split(",")]
    parsed = JdbcUrl(hosts=hosts, database=unquote(path) or None)
    for name, value in parse_qsl(query, keep_blank_values=True):
        _parameter(parsed, name, value)
    if parsed.ignored:
        log.warning(
            "JDBC URL parameters without a PostgreSQL client equivalent ignored: %s",
            ", ".join(parsed.ignored),
            extra={"action": "jdbc_parameters_ignored", "parameters": parsed.ignored},
        )
    return parsed


def _host_port(text: str) -> tuple[str, int | None]:
    text = text.rpartition("@")[2]  # PgJDBC has no user@ part, but libpq users write one
    if text.startswith("["):  # [::1]:5432
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise JdbcUrlError("has an empty host in its host list")
    if not port:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise JdbcUrlError("has a port that is not a number from 1 to 65535")
    return host, int(port)


def _parameter(parsed: JdbcUrl, name: str, value: str) -> None:
    key = name.lower()
    if key == "user":
        parsed.username = value
    elif key == "password":
        parsed.password = value
    elif key == "ssl":
        # PgJDBC's ssl=true verifies the server's certificate and name unless sslmode says less.
        parsed.libpq.setdefault("sslmode", "disable" if value.lower() == "false" else "verify-full")
    elif key in _SAME_IN_LIBPQ:
        parsed.libpq[key] = value
    elif key == "currentschema":
        parsed.libpq["options"] = f"-c search_path={value.replace(' ', '')}"
    elif key == "applicationname":
        parsed.libpq["application_name"] = value
    elif key == "connecttimeout":  # seconds in both
        parsed.libpq["connect_timeout"] = value
    elif key == "targetservertype" and value.lower() in _TARGET_SERVER_TYPES:
        parsed.libpq["target_session_attrs"] = _TARGET_SERVER_TYPES[value.lower()]
    elif key == "loadbalancehosts":
        parsed.libpq["load_balance_hosts"] = "random" if value.lower() == "true" else "disable"
    elif key == "tcpkeepalive":
        parsed.libpq["keepalives"] = "1" if value.lower() == "true" else "0"
    else:
        parsed.ignored.append(name)
