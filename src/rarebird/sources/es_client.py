"""Talking to an Elasticsearch cluster: the URL spec, credentials, TLS and the official client.

Shared by the Elasticsearch source (``es+https://HOST:9200/INDEX-PATTERN``) and the
``elasticsearch`` alert output (``elasticsearch+https://HOST:9200``). A spec is a URL whose
scheme is ``es+http``/``es+https`` or ``elasticsearch+http``/``elasticsearch+https``; its path is
the index pattern a source reads; its query string holds options that are not secrets:

=================== ============================================================================
``config=PATH``     a TOML file with an ``[elasticsearch]`` table: ``api_key`` (the encoded key
                    Kibana shows, or ``id:key``), or ``username`` and ``password``; ``ca_certs``
``ca_certs=PATH``   the CA certificate(s) that signed the cluster's HTTP certificate (PEM)
``data_streams=1``  alerts live in data streams (serverless): no ``require_alias``
``dry_run=1``       print the requests instead of sending them (see docs/ELASTIC.md)
``start=`` ``end=`` (source) the time range to read, as ``--since`` takes it
=================== ============================================================================

**Secrets are never on the command line** (a process list shows it to every user): a spec with
``user:password@`` is refused. Credentials come from the config file, else from the environment:
``RAREBIRD_ES_API_KEY``, or ``RAREBIRD_ES_USERNAME`` and ``RAREBIRD_ES_PASSWORD``;
``RAREBIRD_ES_CA_CERTS`` and ``RAREBIRD_ES_CONFIG`` (the config file) likewise.

The client is the official ``elasticsearch`` package (``pip install 'rarebird[elastic]'``),
imported only when a spec is used. It authenticates with ``api_key`` (header ``Authorization:
ApiKey ...``) or ``basic_auth``, verifies TLS against ``ca_certs``, and retries a request that
got 429, 502, 503 or 504 (``retry_on_status``) -- the client's documented options.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from rarebird.errors import RarebirdError

SCHEMES = ("es+http", "es+https", "elasticsearch+http", "elasticsearch+https")
ENV_API_KEY = "RAREBIRD_ES_API_KEY"
ENV_USERNAME = "RAREBIRD_ES_USERNAME"
ENV_PASSWORD = "RAREBIRD_ES_PASSWORD"
ENV_CA_CERTS = "RAREBIRD_ES_CA_CERTS"
ENV_CONFIG = "RAREBIRD_ES_CONFIG"
_OPTIONS = frozenset({"config", "ca_certs", "data_streams", "dry_run", "start", "end"})
_CONFIG_KEYS = frozenset({"api_key", "username", "password", "ca_certs"})
#: statuses the client retries a whole request on (then gives up with the error)
RETRY_ON_STATUS = (429, 502, 503, 504)


class ElasticError(RarebirdError):
    """An Elasticsearch spec, its credentials, or a request to the cluster failed."""


def is_elastic_spec(spec: str) -> bool:
    """Whether ``spec`` names an Elasticsearch cluster (rather than a file).

    >>> is_elastic_spec("es+https://es.example:9200/logs-*"), is_elastic_spec("events.ndjson")
    (True, False)
    """
    return spec.split("://", 1)[0].lower() in SCHEMES and "://" in spec


@dataclass(frozen=True)
class ElasticTarget:
    """A parsed spec: where the cluster is, how to authenticate, and the options."""

    spec: str
    url: str
    index: str = ""
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    data_streams: bool = False
    dry_run: bool = False
    start: str | None = None
    end: str | None = None

    @property
    def display(self) -> str:
        """The spec without its query string, for messages (it never holds secrets)."""
        return self.spec.split("?", 1)[0]

    @property
    def auth(self) -> str:
        if self.api_key:
            return "api_key"
        return "basic" if self.username else "none"


def parse_target(spec: str, env: dict[str, str] | None = None) -> ElasticTarget:
    """Parse a spec (see the module doc); credentials from its config file or ``env``."""
    env = dict(os.environ) if env is None else env
    if not is_elastic_spec(spec):
        raise ElasticError(f"{spec}: expected es+https://HOST:9200[/INDEX-PATTERN]")
    scheme, _, rest = spec.partition("://")
    parts = urlsplit("http://" + rest)
    if parts.username is not None or parts.password is not None:
        raise ElasticError(
            f"{scheme}://{parts.hostname}: credentials do not belong on the command line; "
            f"set {ENV_API_KEY} (or {ENV_USERNAME} and {ENV_PASSWORD}) or name a config file "
            "with ?config=PATH"
        )
    if not parts.hostname:
        raise ElasticError(f"{spec}: no host")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise ElasticError(
                f"{spec.split('?', 1)[0]}: unknown option {key!r} "
                f"(known: {', '.join(sorted(_OPTIONS))})"
            )
        options[key] = value
    config_path = options.get("config") or env.get(ENV_CONFIG)
    conf = _read_config(config_path) if config_path else {}
    api_key = conf.get("api_key") or env.get(ENV_API_KEY) or None
    username = conf.get("username") or (None if api_key else env.get(ENV_USERNAME)) or None
    password = conf.get("password") or (None if api_key else env.get(ENV_PASSWORD)) or None
    if username and not password:
        raise ElasticError(f"{spec.split('?', 1)[0]}: a username needs a password ({ENV_PASSWORD})")
    ca_certs = options.get("ca_certs") or conf.get("ca_certs") or env.get(ENV_CA_CERTS) or None
    if ca_certs and not os.path.isfile(ca_certs):
        raise ElasticError(f"{ca_certs}: no such CA certificate file")
    http_scheme = "https" if scheme.lower().endswith("https") else "http"
    port = f":{parts.port}" if parts.port else ""
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return ElasticTarget(
        spec=spec,
        url=f"{http_scheme}://{host}{port}",
        index=unquote(parts.path.strip("/")),
        api_key=api_key,
        username=username,
        password=password,
        ca_certs=ca_certs,
        data_streams=_flag(options, "data_streams", spec),
        dry_run=_flag(options, "dry_run", spec),
        start=options.get("start") or None,
        end=options.get("end") or None,
    )


def _flag(options: dict[str, str], key: str, spec: str) -> bool:
    value = options.get(key)
    if value is None:
        return False
    if value.lower() in ("", "1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ElasticError(f"{spec.split('?', 1)[0]}: {key}={value!r} (expected true or false)")


def _read_config(path: str) -> dict[str, str]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ElasticError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ElasticError(f"{path}: invalid TOML: {exc}") from None
    table = data.get("elasticsearch")
    if not isinstance(table, dict):
        raise ElasticError(f"{path}: an [elasticsearch] table is required")
    out: dict[str, str] = {}
    for key, value in table.items():
        if key not in _CONFIG_KEYS:
            raise ElasticError(
                f"{path}: elasticsearch.{key}: unknown key (known: {', '.join(sorted(_CONFIG_KEYS))})"
            )
        if not isinstance(value, str):
            raise ElasticError(f"{path}: elasticsearch.{key}: expected a string")
        out[key] = value
    if "ca_certs" in out and not os.path.isabs(out["ca_certs"]):
        out["ca_certs"] = os.path.join(os.path.dirname(os.path.abspath(path)), out["ca_certs"])
    return out


def make_client(target: ElasticTarget, *, request_timeout: float = 30.0) -> Any:
    """The official client for ``target`` (imported here: the dependency is optional)."""
    try:
        from elasticsearch import Elasticsearch
    except ImportError:
        raise ElasticError(
            f"{target.display}: the official Elasticsearch client is not installed; "
            "install it with: pip install 'rarebird[elastic]'"
        ) from None
    kwargs: dict[str, Any] = {
        "request_timeout": request_timeout,
        "max_retries": 3,
        "retry_on_status": RETRY_ON_STATUS,
        "retry_on_timeout": True,
    }
    if target.api_key:
        kwargs["api_key"] = target.api_key
    elif target.username:
        kwargs["basic_auth"] = (target.username, target.password or "")
    if target.ca_certs:
        kwargs["ca_certs"] = target.ca_certs
    return Elasticsearch(target.url, **kwargs)


def printable(text: object, limit: int = 300) -> str:
    r"""Server-supplied text made safe to show: control characters escaped, length bounded (an
    error reason may echo a document's values, which an attacker may have written).

    >>> printable("no such index [x\x1b[31m]")
    'no such index [x\\x1b[31m]'
    """
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))
    return out if len(out) <= limit else out[:limit] + "..."


def describe_error(exc: BaseException) -> str:
    """A one-line account of a client error: the status, Elasticsearch's error type and reason
    (``index_not_found_exception``, ``security_exception`` ...) or the connection problem."""
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        root = (err.get("root_cause") or [err])[0]
        kind = root.get("type") or err.get("type") or "error"
        reason = root.get("reason") or err.get("reason") or ""
        return printable(f"HTTP {status}: {kind}: {reason}".rstrip(": "))
    if status:
        return printable(f"HTTP {status}: {exc}")
    message = getattr(exc, "message", None) or str(exc)
    return printable(f"{type(exc).__name__}: {message}")
