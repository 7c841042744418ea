"""The http executor's allow-list and refused address ranges; no traffic leaves the machine."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from executors import JobRun, PermanentError
from executors.http import HttpExecutor
from executors.http_guard import AddressRefused, AllowList, HostEntry, normalise_host
from jobexec.core.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("entry", "host", "port"),
    [
        ("api.example.com", "api.example.com", None),
        ("API.Example.COM.", "api.example.com", None),
        ("api.example.com:8443", "api.example.com", 8443),
        ("[::1]", "::1", None),
        ("[::1]:8080", "::1", 8080),
        ("::1", "::1", None),
        ("[0:0::1]", "::1", None),
        ("127.0.0.1:80", "127.0.0.1", 80),
        ("169.254.169.254", "169.254.169.254", None),
        ("bücher.example", "xn--bcher-kva.example", None),
        ("  spaced.example  ", "spaced.example", None),
    ],
)
def test_given_an_entry_when_parsed_then_host_and_port_are_normalised(
    entry: str, host: str, port: int | None
) -> None:
    assert HostEntry.parse(entry) == HostEntry(host, port)


@pytest.mark.parametrize(
    "entry",
    [
        "host:99999",
        "host:0",
        "host:http",
        "[::1",
        "[::1]x",
        "[127.0.0.1]",
        "a b",
        "-bad-.example",
        "x..y",
        ":80",
    ],
)
def test_given_a_bad_entry_when_parsed_then_value_error(entry: str) -> None:
    with pytest.raises(ValueError):
        HostEntry.parse(entry)


def test_given_a_bad_allow_list_when_the_executor_is_built_then_config_error_names_it() -> None:
    with pytest.raises(ConfigError) as raised:
        HttpExecutor(Settings.load({"CONFIGS_EXECUTORS_HTTP_ALLOWEDHOSTS": "ok.example, h:99999"}))

    assert raised.value.key == "configs.executors.http.allowed-hosts"
    assert "outside 1-65535" in str(raised.value)
    assert "CONFIGS_EXECUTORS_HTTPALLOWEDHOSTS" in str(raised.value) or "environment" in str(
        raised.value
    )


def test_given_entries_when_targets_are_checked_then_only_listed_host_and_port_pass() -> None:
    allow = AllowList.parse("api.example.com, [::1]:8080, 10.0.0.5:443")

    allow.check_target("api.example.com", 1234)
    allow.check_target("::1", 8080)
    allow.check_target("10.0.0.5", 443)
    for host, port in [("::1", 8081), ("10.0.0.5", 80), ("other.example", 443)]:
        with pytest.raises(
            AddressRefused, match=r"is not in configs\.executors\.http\.allowed-hosts"
        ):
            allow.check_target(host, port)


def test_given_an_empty_list_when_targets_are_checked_then_any_host_passes() -> None:
    AllowList.parse(" , ").check_target("anything.example", 1)


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"],
)
def test_given_a_link_local_or_metadata_address_when_checked_then_refused_naming_the_rule(
    address: str,
) -> None:
    with pytest.raises(
        AddressRefused, match=r"refused: .*\((169\.254\.0\.0/16|fe80::/10|fd00:ec2::254/128)\)"
    ):
        AllowList().check_address("x.example", ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "8.8.8.8"]
)
def test_given_loopback_private_or_public_addresses_when_checked_then_allowed(address: str) -> None:
    AllowList().check_address("x.example", ipaddress.ip_address(address))


def test_given_an_allowed_name_resolving_to_metadata_when_checked_then_still_refused() -> None:
    allow = AllowList.parse("metadata.example")

    with pytest.raises(AddressRefused, match=r"resolved from metadata\.example"):
        allow.check_address("metadata.example", ipaddress.ip_address("169.254.169.254"))


def test_given_the_address_itself_on_the_list_when_checked_then_it_is_allowed() -> None:
    AllowList.parse("169.254.169.254").check_address(
        "169.254.169.254", ipaddress.ip_address("169.254.169.254")
    )


def test_given_names_when_normalised_then_case_final_dot_and_idna_are_folded() -> None:
    assert normalise_host("Example.COM.") == "example.com"
    assert normalise_host("[::FFFF:7f00:1]") == "::ffff:7f00:1"
    assert normalise_host("ПРИМЕР.рф") == "xn--e1afmkfd.xn--p1ai"


# --- through the executor, with a resolver that maps a name to the metadata address -------------


class MetadataResolver:
    """Maps every name to the cloud metadata address; records lookups. Nothing is connected."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses or ("169.254.169.254",)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        self.lookups.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, (a, port)) for a in self.addresses
        ]


def http_run(url: str) -> JobRun:
    return JobRun("job_1", 1, "run-1", {"task": "http", "url": url, "timeout_seconds": 2})


@pytest.mark.parametrize(
    "allowed",
    ["", "metadata.example"],
    ids=["default", "name-on-the-allow-list"],
)
def test_given_a_name_resolving_to_metadata_when_executed_then_it_fails_permanently(
    allowed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_connect(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a refused address must never be connected to")

    monkeypatch.setattr("executors.http_network._connect", no_connect)
    resolver = MetadataResolver()
    executor = HttpExecutor(
        Settings.load({"CONFIGS_EXECUTORS_HTTP_ALLOWEDHOSTS": allowed}), resolver=resolver
    )
    try:
        with pytest.raises(PermanentError) as raised:
            executor.execute(http_run("http://metadata.example/latest/meta-data/"))
    finally:
        executor.close()

    assert resolver.lookups == ["metadata.example"]
    assert "169.254.169.254" in str(raised.value)
    assert "169.254.0.0/16" in str(raised.value)


def test_given_one_of_several_addresses_refused_when_executed_then_none_is_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connected: list[Any] = []
    monkeypatch.setattr(
        "executors.http_network._connect", lambda *args, **_kw: connected.append(args)
    )
    executor = HttpExecutor(Settings.load({}), resolver=MetadataResolver("127.0.0.1", "fe80::1"))
    try:
        with pytest.raises(PermanentError, match="fe80::/10"):
            executor.execute(http_run("http://two.example/"))
    finally:
        executor.close()

    assert connected == []


def test_given_the_metadata_ip_literal_by_default_when_executed_then_it_fails_permanently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_connect(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a refused address must never be connected to")

    monkeypatch.setattr("executors.http_network._connect", no_connect)
    executor = HttpExecutor(Settings.load({}))
    try:
        for url in ["http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://2852039166/"]:
            with pytest.raises(PermanentError, match="refused"):
                executor.execute(http_run(url))
    finally:
        executor.close()
