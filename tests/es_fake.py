"""A stand-in Elasticsearch on loopback for the Elasticsearch source and output tests.

**Not a live cluster.** No Elasticsearch server can be installed from the package registries
this project reaches, so this is a real HTTP(S) server (stdlib ``http.server``) that answers the
requests the official Python client really sends with response bodies whose *shapes* are taken
from Elasticsearch's REST API documentation -- ``_bulk`` (per-item ``create`` / ``update``
results: 201, 409 ``version_conflict_engine_exception``, 429 ``es_rejected_execution_exception``,
400 ``mapper_parsing_exception``, 404 ``index_not_found_exception``), ``_search`` (hits with
``_index``, ``sort``, ``pit_id``, ``_shards`` with failures, ``timed_out``, ``min`` / ``max`` and
``date_histogram`` aggregations), ``_pit`` open and close, and error bodies
(``index_not_found_exception``, ``security_exception``). It records every request so tests
assert exactly what was sent. It evaluates only what it must to answer consistently: the
``@timestamp`` range of a search (the datafeed query itself is checked by asserting the body
sent, and rarebird re-checks it on every event), ``ids`` queries, ``search_after`` over
(``@timestamp``, ``_shard_doc``) and aliases with a write index.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


def _ms(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    text = str(value).replace("Z", "+00:00")
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def error_body(status: int, kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    cause = {"type": kind, "reason": reason, **extra}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


@dataclass
class FakeCluster:
    """What the fake server holds and how it misbehaves on purpose."""

    #: concrete index -> {id: source}
    indices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: alias -> (backing indices, write index)
    aliases: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    #: the documents a source search reads (any index pattern), in index order
    events: list[dict[str, Any]] = field(default_factory=list)
    #: index patterns that do not exist (search answers index_not_found_exception)
    missing: set[str] = field(default_factory=set)
    #: the Authorization header every request must carry (None: no security)
    authorization: str | None = None
    #: alert ids whose next bulk item gets this (status, error type) once
    item_failures: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    #: statuses the next whole _bulk requests answer with, in order
    bulk_failures: list[int] = field(default_factory=list)
    #: make the next source search report one failed shard
    shard_failure: bool = False
    requests: list[Request] = field(default_factory=list)
    pits_open: set[str] = field(default_factory=set)
    pit_counter: int = 0
    #: called before an answer, to change the cluster mid-test
    on_request: Callable[[Request], None] | None = None

    def add_alias(self, alias: str, *backing: str) -> None:
        for name in backing:
            self.indices.setdefault(name, {})
        self.aliases[alias] = (list(backing), backing[-1])

    def rollover(self, alias: str, new_index: str) -> None:
        backing, _ = self.aliases[alias]
        self.indices.setdefault(new_index, {})
        self.aliases[alias] = ([*backing, new_index], new_index)

    def resolve(self, name: str) -> list[str]:
        if name in self.aliases:
            return list(self.aliases[name][0])
        return [name] if name in self.indices else []

    def find(self, alias: str, doc_id: str) -> str | None:
        for index in self.resolve(alias):
            if doc_id in self.indices[index]:
                return index
        return None

    def doc(self, doc_id: str) -> dict[str, Any]:
        for docs in self.indices.values():
            if doc_id in docs:
                return docs[doc_id]
        raise KeyError(doc_id)

    def requests_to(self, path_end: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(path_end)]


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            self.command, parts.path, dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in self.headers.items()}, body,
        )  # fmt: skip
        c = self.cluster
        c.requests.append(req)
        if c.on_request is not None:
            c.on_request(req)
        if c.authorization is not None and req.headers.get("authorization") != c.authorization:
            self._answer(401 if "authorization" not in req.headers else 403, error_body(
                403, "security_exception",
                "action [indices:data/read/search] is unauthorized for user [anonymous]",
            ))  # fmt: skip
            return
        path = parts.path
        if path.endswith("/_bulk"):
            self._bulk(req)
        elif path.endswith("/_pit") and req.method == "POST":
            c.pit_counter += 1
            pit = f"pit-{c.pit_counter}"
            c.pits_open.add(pit)
            self._answer(200, {"id": pit})
        elif path == "/_pit" and req.method == "DELETE":
            pit = req.json()["id"]
            freed = int(pit in c.pits_open)
            c.pits_open.discard(pit)
            self._answer(200, {"succeeded": True, "num_freed": freed})
        elif path.endswith("/_search"):
            self._search(req)
        elif path == "/":
            self._answer(200, {"name": "fake", "cluster_name": "fake", "version":
                               {"number": "9.1.0", "build_flavor": "default"},
                               "tagline": "You Know, for Search"})  # fmt: skip
        else:
            self._answer(
                400, error_body(400, "illegal_argument_exception", f"no handler for {path}")
            )

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    # --- _bulk --------------------------------------------------------------------------------

    def _bulk(self, req: Request) -> None:
        c = self.cluster
        if c.bulk_failures:
            status = c.bulk_failures.pop(0)
            self._answer(status, error_body(status, "es_rejected_execution_exception",
                                            "rejected execution of bulk request"))  # fmt: skip
            return
        lines = req.ndjson()
        request_alias_required = req.query.get("require_alias") == "true"
        default_index = req.path[: -len("/_bulk")].strip("/") or None
        items = []
        for meta_line, source in zip(lines[::2], lines[1::2], strict=True):
            ((op, meta),) = meta_line.items()
            doc_id = meta["_id"]
            target = meta.get("_index", default_index)
            require_alias = meta.get("require_alias", request_alias_required)
            planned = c.item_failures.get(doc_id)
            if planned:
                status, kind = planned.pop(0)
                items.append({op: {"_index": target, "_id": doc_id, "status": status,
                                   "error": {"type": kind, "reason": f"{kind} (planned)"}}})  # fmt: skip
                continue
            items.append({op: self._item(op, target, doc_id, source, require_alias)})
        errors = any("error" in next(iter(i.values())) for i in items)
        self._answer(200, {"took": 3, "errors": errors, "items": items})

    def _item(
        self, op: str, target: str, doc_id: str, source: dict[str, Any], require_alias: bool
    ) -> dict[str, Any]:
        c = self.cluster
        if require_alias and target not in c.aliases:
            return {"_index": target, "_id": doc_id, "status": 404, "error": {
                "type": "index_not_found_exception",
                "reason": f"no such index [{target}] and [require_alias] request flag is [true] "
                          f"and [{target}] is not an alias", "index": target}}  # fmt: skip
        if op == "create":
            where = c.find(target, doc_id)
            if where is not None and where == (c.aliases.get(target, ([], target))[1]):
                return {"_index": where, "_id": doc_id, "status": 409, "error": {
                    "type": "version_conflict_engine_exception",
                    "reason": f"[{doc_id}]: version conflict, document already exists "
                              "(current version [1])", "index": where}}  # fmt: skip
            index = c.aliases[target][1] if target in c.aliases else target
            c.indices.setdefault(index, {})[doc_id] = dict(source)
            return {"_index": index, "_id": doc_id, "_version": 1, "result": "created",
                    "_shards": {"total": 2, "successful": 1, "failed": 0},
                    "_seq_no": 0, "_primary_term": 1, "status": 201}  # fmt: skip
        if op == "update":
            index = c.aliases[target][1] if target in c.aliases else target
            docs = c.indices.get(index, {})
            if doc_id not in docs:
                return {"_index": index, "_id": doc_id, "status": 404, "error": {
                    "type": "document_missing_exception",
                    "reason": f"[{doc_id}]: document missing", "index": index}}  # fmt: skip
            docs[doc_id].update(source["doc"])
            return {"_index": index, "_id": doc_id, "_version": 2, "result": "updated",
                    "_shards": {"total": 2, "successful": 1, "failed": 0},
                    "_seq_no": 1, "_primary_term": 1, "status": 200}  # fmt: skip
        return {"_index": target, "_id": doc_id, "status": 400, "error": {
            "type": "illegal_argument_exception", "reason": f"op {op} not faked"}}  # fmt: skip

    # --- _search ------------------------------------------------------------------------------

    def _search(self, req: Request) -> None:
        c = self.cluster
        body = req.json() if req.body else {}
        index = req.path[: -len("/_search")].strip("/")
        if index in c.missing:
            self._answer(404, error_body(404, "index_not_found_exception",
                                         f"no such index [{index}]", index=index))  # fmt: skip
            return
        query = body.get("query") or {}
        if "ids" in query:  # the alert lookup
            hits = []
            for doc_id in query["ids"]["values"]:
                where = c.find(index, doc_id)
                if where is not None:
                    hits.append({"_index": where, "_id": doc_id, "_score": 1.0})
            self._answer(200, self._response(hits, len(hits)))
            return
        gte, lt = _range(query)
        matching = [
            (i, e) for i, e in enumerate(c.events) if gte <= _ms(e["@timestamp"]) < lt
        ]  # fmt: skip
        matching.sort(key=lambda p: (_ms(p[1]["@timestamp"]), p[0]))
        aggs = body.get("aggs") or body.get("aggregations")
        if aggs:
            self._answer(200, self._aggregations(aggs, matching))
            return
        after = body.get("search_after")
        if after is not None:
            matching = [
                p for p in matching if (_ms(p[1]["@timestamp"]), p[0]) > (after[0], after[1])
            ]
        page = matching[: body.get("size", 10)]
        hits = []
        for i, event in page:
            hits.append({"_index": "logs-endpoint.events.process-default", "_id": f"doc{i}",
                         "_score": None, "_source": _project(event, body.get("_source")),
                         "sort": [_ms(event["@timestamp"]), i]})  # fmt: skip
        resp = self._response(hits, len(matching))
        if "pit" in body:
            resp["pit_id"] = body["pit"]["id"]
        if c.shard_failure:
            c.shard_failure = False
            resp["_shards"] = {"total": 2, "successful": 1, "skipped": 0, "failed": 1,
                               "failures": [{"shard": 1, "index": "logs-endpoint.events.process-default",
                                             "node": "n1", "reason": {"type": "node_not_connected_exception",
                                                                      "reason": "[n1] Node not connected"}}]}  # fmt: skip
        self._answer(200, resp)

    def _response(self, hits: list[dict[str, Any]], total: int) -> dict[str, Any]:
        return {"took": 2, "timed_out": False,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": total, "relation": "eq"}, "max_score": None,
                         "hits": hits}}  # fmt: skip

    def _aggregations(
        self, aggs: dict[str, Any], matching: list[tuple[int, dict[str, Any]]]
    ) -> dict[str, Any]:
        stamps = [_ms(e["@timestamp"]) for _, e in matching]
        out: dict[str, Any] = {}
        for name, agg in aggs.items():
            if "min" in agg or "max" in agg:
                value = (min if "min" in agg else max)(stamps) if stamps else None
                out[name] = {"value": value} | ({"value_as_string": _iso(value)} if value else {})
            elif "date_histogram" in agg:
                step = _ms_interval(agg["date_histogram"]["fixed_interval"])
                counts: dict[int, int] = {}
                for ms in stamps:
                    counts[ms - ms % step] = counts.get(ms - ms % step, 0) + 1
                out[name] = {"buckets": [{"key_as_string": _iso(k), "key": k, "doc_count": n}
                                         for k, n in sorted(counts.items())]}  # fmt: skip
        resp = self._response([], len(matching))
        resp["aggregations"] = out
        return resp


def _range(query: dict[str, Any]) -> tuple[int, int]:
    """The @timestamp range of a datafeed search: bool.filter[...].range.@timestamp."""
    for clause in (query.get("bool") or {}).get("filter") or []:
        rng = clause.get("range", {}).get("@timestamp")
        if rng:
            return _ms(rng.get("gte", 0)), _ms(rng.get("lt", 2**62))
    return 0, 2**62


def _ms_interval(text: str) -> int:
    units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    for unit in ("ms", "s", "m", "h", "d"):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * units[unit]
    raise ValueError(text)


def _project(doc: dict[str, Any], includes: Any) -> dict[str, Any]:
    if not includes:
        return doc
    out: dict[str, Any] = {}
    for name in includes:
        node: Any = doc
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        cursor = out
        parts = name.split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = node
    return out


class FakeElasticsearch:
    """The server: ``with FakeElasticsearch(tls=...) as es: es.url, es.cluster``."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.cluster = FakeCluster()
        handler = type("Handler", (_Handler,), {"cluster": self.cluster})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def spec(self, path: str = "", *, query: str = "", prefix: str = "es") -> str:
        tail = f"/{path}" if path else ""
        return f"{prefix}+{self.scheme}://127.0.0.1:{self.port}{tail}{'?' + query if query else ''}"

    def __enter__(self) -> FakeElasticsearch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def make_tls(folder: Any) -> tuple[ssl.SSLContext, str]:
    """A CA made here (cryptography), a server certificate for 127.0.0.1 it signed, and the
    server's TLS context; returns (context, path of the CA certificate in PEM)."""
    import ipaddress
    from datetime import timedelta
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rarebird test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx, str(ca_path)
