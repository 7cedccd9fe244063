"""`redis_url_problem` against Redis's own URL parser, one table: a URL the client reads as it
says is accepted; a URL the client refuses is refused; a URL the client reads otherwise than
it says (a database ignored, a default put in silently) is refused, for the service would
start and answer every call 503. Should an upgrade of the client read any of these otherwise,
this says which."""

import pytest
from redis.asyncio.connection import parse_url as async_parse_url
from redis.connection import parse_url

from iris_prompt.addresses import redis_url_problem

Reading = dict[str, object]


def reading(url: str) -> Reading | str:
    """Where Redis's client connects for `url` (host, port, db, socket path), or its refusal."""
    try:
        options = async_parse_url(url)
    except ValueError:
        with pytest.raises(ValueError):  # both of its parsers agree
            parse_url(url)
        return "refused"
    assert {k: v for k, v in parse_url(url).items() if k != "connection_class"} == {
        k: v for k, v in options.items() if k != "connection_class"
    }
    return {k: v for k, v in options.items() if k in ("host", "port", "db", "path")}


ACCEPTED: list[tuple[str, Reading]] = [
    ("redis://redis:6379/0", {"host": "redis", "port": 6379, "db": 0}),
    ("rediss://:pw@redis.internal:6380/2", {"host": "redis.internal", "port": 6380, "db": 2}),
    ("redis://user:pw@redis:6379/0", {"host": "redis", "port": 6379, "db": 0}),
    ("redis://my_redis", {"host": "my_redis"}),
    ("redis://REDIS.Example.ORG/0", {"host": "redis.example.org", "db": 0}),
    # A fully qualified host name, ending in a dot.
    ("redis://cache.example.org.:6379/0", {"host": "cache.example.org.", "port": 6379, "db": 0}),
    ("rediss://cache.example.org./1", {"host": "cache.example.org.", "db": 1}),
    # A path ending in `/`.
    ("redis://redis:6379/0/", {"host": "redis", "port": 6379, "db": 0}),
    ("redis://redis:6379/", {"host": "redis", "port": 6379}),
    ("redis://redis/15//", {"host": "redis", "db": 15}),
    ("redis://redis:6379?db=3", {"host": "redis", "port": 6379, "db": 3}),
    ("redis://redis:6379/?db=3", {"host": "redis", "port": 6379, "db": 3}),
    ("redis://redis:/0", {"host": "redis", "db": 0}),
    ("redis://re%64is:6379/%31", {"host": "redis", "port": 6379, "db": 1}),
    ("redis://redis/0?socket_timeout=1.5", {"host": "redis", "db": 0}),
    (
        "rediss://redis:6380/0?socket_timeout=2.5&health_check_interval=30",
        {"host": "redis", "port": 6380, "db": 0},
    ),
    ("redis://10.0.0.5:6379/15", {"host": "10.0.0.5", "port": 6379, "db": 15}),
    ("redis://[::1]:6379", {"host": "::1", "port": 6379}),
    ("unix:///run/redis/redis.sock?db=1", {"path": "/run/redis/redis.sock", "db": 1}),
]

REFUSED_BY_THE_CLIENT = [
    ("http://redis:6379", "must start redis://, rediss:// (TLS) or unix://"),
    ("redis://redis:99999/0", "the port must be a number from 1 to 65535"),
    ("redis://redis:six/0", "the port must be a number from 1 to 65535"),
    ("redis://redis/0?db=one", "the database must be a number"),
    ("unix:///run/redis/redis.sock?db=x", "the database must be a number"),
    ("redis://[::1/0", "is not a URL"),
    ("redis://redis/0?socket_timeout=soon", "socket_timeout has a value Redis's client cannot"),
]

# Read by the client, but not as written: it would connect elsewhere, or to another database.
MISREAD_BY_THE_CLIENT: list[tuple[str, Reading, str]] = [
    ("redis://redis host:6379/0", {"host": "redis host", "port": 6379, "db": 0}, "the host"),
    ("redis://redis%20host/0", {"host": "redis host", "db": 0}, "the host"),
    ("redis://cache..example.org/0", {"host": "cache..example.org", "db": 0}, "the host"),
    ("redis://redis:6379/O", {"host": "redis", "port": 6379}, "the database must be a number"),
    ("redis://redis/\u00b9", {"host": "redis"}, "the database must be a number"),
    (
        "redis://redis/1/5",
        {"host": "redis", "db": 15},
        "the database must be a number",
    ),  # read as 15
    ("redis://redis:0/0", {"host": "redis", "db": 0}, "the port must be a number"),
    ("redis://:pw@/0", {"db": 0}, "has no host"),
    ("unix://", {}, "unix:// needs the socket's path"),
]


@pytest.mark.parametrize(("url", "read"), ACCEPTED)
def test_a_url_the_client_reads_as_written_is_accepted(url: str, read: Reading) -> None:
    assert reading(url) == read
    assert redis_url_problem(url) is None


@pytest.mark.parametrize(("url", "problem"), REFUSED_BY_THE_CLIENT)
def test_a_url_the_client_refuses_is_refused(url: str, problem: str) -> None:
    assert reading(url) == "refused"
    assert (redis_url_problem(url) or "").startswith(problem)


@pytest.mark.parametrize(("url", "read", "problem"), MISREAD_BY_THE_CLIENT)
def test_a_url_the_client_misreads_is_refused(url: str, read: Reading, problem: str) -> None:
    assert reading(url) == read
    assert (redis_url_problem(url) or "").startswith(problem)


def test_a_url_python_cannot_split_is_refused_without_repeating_its_password() -> None:
    # Python's own refusal of this one quotes the part that holds the password.
    url = "redis://:s3cret\uff03pw@redis/0"
    assert reading(url) == "refused"
    assert redis_url_problem(url) == "is not a URL (a bracket or character out of place)"
