"""The addresses an operator gives in the settings: whether a host is this machine, whether a
base URL may be handed to CDS clients, and whether a Redis URL is one Redis's client reads as
meant. Plain functions of strings: no settings, no I/O."""

import ipaddress
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from cds_hooks.numbers import ascii_number

__all__ = ["is_loopback", "is_secure_base", "redis_url_problem"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# A host name as DNS (and container networks, which allow `_`) spell it; a final dot makes
# it fully qualified.
LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
HOST_NAME = re.compile(rf"{LABEL}(\.{LABEL})*\.?")


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, never repeating it (it may hold a password); None if
    nothing. Redis's client accepts a host with a space and ignores a database that is not a
    number, so without this the service would start and refuse every call with 503.

    >>> redis_url_problem("rediss://:secret@redis.internal:6380/2") is None
    True
    >>> redis_url_problem("redis://redis:6379/zero")
    'the database must be a number, such as /0'
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # whose words quote the part of the URL that holds the password
        return "is not a URL (a bracket or character out of place)"
    if parts.scheme not in ("redis", "rediss", "unix"):
        return "must start redis://, rediss:// (TLS) or unix://"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        return "the port must be a number from 1 to 65535"
    db = [v for k, v in parse_qsl(parts.query) if k == "db"]
    if parts.scheme == "unix":
        if not parts.path:
            return "unix:// needs the socket's path, such as unix:///run/redis/redis.sock"
    else:
        # Read percent-decoded, as Redis's client reads them: `re%64is` is the host redis.
        host = unquote(parts.hostname or "")
        if not host:
            return "has no host"
        if not HOST_NAME.fullmatch(host) and not _ip_address(host):
            return "the host is neither a host name nor an IP address"
        db.append(unquote(parts.path).strip("/"))  # /0 or /0/
    if any(value and ascii_number(value) is None for value in db):
        return "the database must be a number, such as /0"
    return _option_problem(url)


def _option_problem(url: str) -> str | None:
    """An option in the query that Redis's client cannot read (socket_timeout=abc), named."""
    if "?" not in url:
        return None
    from redis.connection import parse_url  # only for a URL with options

    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as error:
        # Its message names the option, never the value; only the name is repeated.
        named = re.search(r"'([A-Za-z_]+)'", str(error))
        option = named.group(1) if named else "an option"
        return f"{option} has a value Redis's client cannot read"
    return None


def _ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_secure_base(url: str) -> bool:
    """Whether CDS clients may be told to call `url`: https, or http on a loopback address
    (tests and development on one machine, where nothing crosses a network).

    >>> is_secure_base("https://iris.example.nhs.uk"), is_secure_base("http://127.0.0.1:8000")
    (True, True)
    >>> is_secure_base("http://iris.example.nhs.uk")
    False
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback(parts.hostname or "")
