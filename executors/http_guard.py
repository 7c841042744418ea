"""Where the `http` executor may connect: the host allow-list and the refused address ranges.

The allow-list (`configs.executors.http.allowed-hosts`) is checked against the URL's host and
port; the refused ranges are checked against every address the host resolves to, so a name
that points at cloud metadata is refused like the address itself.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

from jobexec.core.sections import ALLOWED_HOSTS_KEY as ALLOWED_HOSTS_KEY

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused unless the allow-list lists the address itself: a job must not read the machine's
# cloud credentials (AWS, GCP and Azure serve them on 169.254.169.254, AWS also on fd00:ec2::254).
REFUSED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("169.254.0.0/16"), "link-local and cloud metadata addresses"),
    (ipaddress.ip_network("fe80::/10"), "link-local addresses"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "the cloud metadata address"),
)

_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


class AddressRefused(Exception):
    """A call's target is outside what the executor may reach; `reason` names the rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_host(host: str) -> str:
    """The comparable form of a host: IP literals canonical, names lower-case IDNA, no final dot.

    ValueError when it is neither an IP address nor a valid DNS name.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    address = _ip(text)
    if address is not None:
        return str(address)
    name = text.rstrip(".") if text.endswith(".") and not text.endswith("..") else text
    if not name:
        raise ValueError("empty host name")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(f"not a valid international host name ({exc})") from None
    name = name.lower()
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError("not a valid host name")
    return name


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return port


@dataclass(frozen=True)
class HostEntry:
    """One allow-list entry: a host, and the one port allowed (None: any port)."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> HostEntry:
        """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IP literal; ValueError otherwise."""
        text = entry.strip()
        if text.startswith("["):
            inside, bracket, rest = text[1:].partition("]")
            if (
                not bracket
                or _ip(inside) is None
                or not isinstance(_ip(inside), ipaddress.IPv6Address)
            ):
                raise ValueError(f"{entry!r} is not a valid [IPv6] entry")
            if rest and not rest.startswith(":"):
                raise ValueError(f"{entry!r} has text after the ]")
            return cls(normalise_host(inside), _port(rest[1:]) if rest else None)
        if _ip(text) is not None:  # a bare IPv6 literal has colons but no port
            return cls(normalise_host(text))
        host, colon, port = text.rpartition(":")
        if not colon:
            return cls(normalise_host(text))
        return cls(normalise_host(host), _port(port))

    def matches(self, host: str, port: int) -> bool:
        return self.host == host and self.port in (None, port)

    def __str__(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return shown if self.port is None else f"{shown}:{self.port}"


@dataclass(frozen=True)
class AllowList:
    """The parsed `configs.executors.http.allowed-hosts`; empty means any host."""

    entries: tuple[HostEntry, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """Comma-separated entries; ValueError naming the first bad one."""
        return cls(tuple(HostEntry.parse(e) for e in text.split(",") if e.strip()))

    def check_target(self, host: str, port: int) -> None:
        """AddressRefused when the list is not empty and no entry allows host:port."""
        if self.entries and not any(e.matches(host, port) for e in self.entries):
            shown = f"[{host}]" if ":" in host else host
            raise AddressRefused(f"host {shown}:{port} is not in {ALLOWED_HOSTS_KEY}")

    def check_address(self, host: str, address: IPAddress) -> None:
        """AddressRefused when `address` (one that `host` resolved to) is in a refused range.

        Only an entry that is the address itself lifts the rule: an allowed name that resolves
        to a metadata address is still refused.
        """
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:169.254.169.254 reaches the IPv4 address
        for network, what in REFUSED_NETWORKS:
            if address in network and not any(e.host == str(address) for e in self.entries):
                via = "" if host == str(address) else f" (resolved from {host})"
                raise AddressRefused(
                    f"address {address}{via} is refused: {what} ({network}) are not called "
                    f"unless {ALLOWED_HOSTS_KEY} lists the address"
                )
