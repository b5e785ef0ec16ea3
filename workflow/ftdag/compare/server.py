"""ftdag's own OpenAI-compatible HTTP server, on 127.0.0.1, for the compare family.

Why: the compare family reaches an API baseline, an API fine-tune and a local fine-tune through
the real `openai` client. Its embedded default must run offline and for free, so the workflow
starts this server for the compare rules and points the client at it; tests go through the
real client too, so a request or response shape the client would reject fails here first.

What it does: the endpoints a fine-tuning comparison uses, in OpenAI's shapes and errors
(401, 400, 404, 413, 429, 500 as {"error": {"message", "type", "param", "code"}}):
    GET  /v1/models, /v1/models/{id}
    POST /v1/files (multipart), GET /v1/files, /v1/files/{id}, /v1/files/{id}/content
    POST /v1/fine_tuning/jobs, GET /v1/fine_tuning/jobs (limit, after, metadata[k]=v),
    GET  /v1/fine_tuning/jobs/{id}, /v1/fine_tuning/jobs/{id}/events,
    POST /v1/fine_tuning/jobs/{id}/cancel
    POST /v1/chat/completions (usage counted by the backend, else estimated)
Answers come from pluggable backends (server_jobs.Backends: plain callables); jobs, files,
events and models persist in a state directory (server_state), and a job a stopped server left
running is resumed by the next. Every request needs `Authorization: Bearer <key>`.

Run from Python, `with serve(state_dir, key, backends) as handle:` (handle.base_url), or from a
rule, in the background until SIGTERM: `OPENAI_API_KEY=... python -m ftdag.compare.server
--state DIR --backends MODULE:ATTR --url-file FILE` (the URL is written once it listens).

Faults, injected for testing a client's retries: {"rate_limit": 0.1, "server_error": 0.1,
"stall": 0.1, "stall_seconds": 5, "retry_after": 1, "seed": 0, "scope": "chat"} makes those
fractions of requests answer 429 (with Retry-After and retry-after-ms, which the client
prefers: tests retry in milliseconds), 500, or wait stall_seconds before being answered.
Draws come from one generator seeded with `seed`, in the order requests arrive. Scope "chat"
(the default) applies them to chat completions only, "all" to every endpoint; never to a
request that fails the key check, which is answered first. The CLI also reads them, as that
JSON, from the environment variable FTDAG_COMPARE_FAULTS (serve() only from its argument).

What it does not do: serve anything but 127.0.0.1 (no TLS, one key); streaming, n > 1, tools,
embeddings, batches, assistants, file deletion, DPO or reinforcement fine-tuning, checkpoints
endpoints; real tokenization (usage is the backend's count or an estimate); stream uploads to
disk (a request body is held in memory, up to max_body_bytes); train two jobs at once.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import importlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ftdag.compare.server_api import Api
from ftdag.compare.server_faults import Faults
from ftdag.compare.server_jobs import Backends, JobRunner
from ftdag.compare.server_requests import Request
from ftdag.compare.server_state import ApiError, Store
from ftdag.core.io import atomic_write_text

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY_BYTES = 512 * 2**20  # OpenAI's limit on an uploaded file
FAULTS_ENV = "FTDAG_COMPARE_FAULTS"
ORGANIZATION = "org-ftdag-local"
# A refused body is still read (up to this) so that the client, still sending, gets the
# answer rather than a reset connection.
MAX_DISCARD_BYTES = 2 * 2**30
CHUNK = 2**20


@dataclass
class App:
    api: Api
    api_key: str
    faults: Faults | None
    max_body_bytes: int
    stopping: threading.Event = field(default_factory=threading.Event)
    connections: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_key(self, authorization: str | None) -> None:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            raise ApiError(401, message)
        if not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            shown = key.strip()[:3] + "*" * 4 + key.strip()[-4:]  # never echo a whole key
            message = f"Incorrect API key provided: {shown}."
            raise ApiError(401, message, code="invalid_api_key")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    server_version = "ftdag-compare"
    timeout = 300  # an idle kept-alive connection frees its thread after this

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm the second waits for
        # the client's delayed ACK, 40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.app.lock:
            self.server.app.connections.add(self.connection)

    def finish(self):
        with self.server.app.lock:
            self.server.app.connections.discard(self.connection)
        super().finish()

    def log_message(self, format, *args):
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self):
        self.handle_api()

    def do_POST(self):
        self.handle_api()

    def do_DELETE(self):
        self.handle_api()

    def handle_api(self) -> None:
        app = self.server.app
        headers = {"x-request-id": "req_" + secrets.token_hex(12)}
        self._unread = self._declared_length()
        try:
            app.check_key(self.headers.get("Authorization"))  # first: faults never precede it
            url = urlsplit(self.path)
            handler, params = app.api.route(self.command, url.path)
            body = self._read_body(app.max_body_bytes)
            if app.faults is not None:
                app.faults.apply(url.path, app.stopping)
            query = parse_qs(url.query, keep_blank_values=True)
            request = Request(self.command, url.path, query, self.headers, body)
            status, payload = handler(request, **params)
        except ApiError as error:
            status, payload = error.status, error.body()
            headers.update(error.headers)
        except Exception as error:  # a backend's bug answers as the API would, and is logged
            log.exception("%s %s", self.command, self.path)
            message = f"The server had an error processing your request ({error})"
            status, payload = 500, ApiError(500, message, "server_error").body()
        self._discard_unread()
        self._send(status, payload, headers)

    def _declared_length(self) -> int | None:
        """The body's declared length; None for a chunked one."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        try:
            return max(0, int(self.headers.get("Content-Length", 0)))
        except ValueError:
            self.close_connection = True  # where this body ends cannot be known
            return 0

    def _read_body(self, limit: int) -> bytes:
        too_large = ApiError(413, f"Request body larger than {limit} bytes", code="body_too_large")
        if self._unread is None:
            return self._read_chunked(limit, too_large)
        if self._unread > limit:
            raise too_large
        body = self.rfile.read(self._unread)
        self._unread = 0
        return body

    def _read_chunked(self, limit: int, too_large: ApiError) -> bytes:
        chunks, total = [], 0
        while True:
            try:
                size = int(self.rfile.readline().split(b";")[0], 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "Malformed chunked body") from None
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._unread = 0
                return b"".join(chunks)
            total += size
            if total > limit:
                self.close_connection = True  # the rest is not read: the connection ends
                raise too_large
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _discard_unread(self) -> None:
        if self._unread is None or self._unread > MAX_DISCARD_BYTES:
            self.close_connection = True
            return
        while self._unread > 0:
            data = self.rfile.read(min(CHUNK, self._unread))
            if not data:
                break
            self._unread -= len(data)

    def _send(self, status: int, payload, headers: dict) -> None:
        if isinstance(payload, bytes):
            data, content_type = payload, "application/octet-stream"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client gave up (a stall outlasting its timeout)


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: App


class ServerHandle:
    """A running server: `base_url` for the client, `stop()` (or a `with` block) to end it."""

    def __init__(self, httpd: HTTPServer, runner: JobRunner, store: Store):
        self._httpd, self._runner, self._store = httpd, runner, store
        self.port = httpd.server_address[1]
        self.base_url = f"http://{HOST}:{self.port}/v1"
        self.state_dir = store.dir
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.1,), daemon=True)
        self._stopped = False

    def start(self) -> ServerHandle:
        self._runner.start()
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop answering, interrupt the running job (it stays running on disk, to resume),
        and release the state directory. Waits up to `timeout` for a backend to return."""
        if self._stopped:
            return
        self._stopped = True
        app = self._httpd.app
        app.stopping.set()
        self._httpd.shutdown()
        with app.lock:  # kept-alive connections would go on answering from their threads
            for connection in list(app.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._runner.stop(timeout)
        self._store.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(
    state_dir,
    api_key: str,
    backends,
    port: int = 0,
    faults=None,
    max_body_bytes: int = MAX_BODY_BYTES,
    organization: str = ORGANIZATION,
) -> ServerHandle:
    """Start a server on 127.0.0.1:`port` (0: any free port) and return once it listens.
    `backends`: a Backends or a mapping of its fields; `faults`: see the module docstring."""
    if not api_key:
        raise ValueError("an API key is required: the server answers no request without one")
    backends = Backends.coerce(backends)
    faults = Faults.parse(faults)
    store = Store(state_dir)
    try:
        runner = JobRunner(store, backends, organization)
        api = Api(store, runner, backends, organization)
        httpd = HTTPServer((HOST, port), Handler)
    except BaseException:
        store.close()
        raise
    httpd.app = App(api, api_key, faults, max_body_bytes)
    return ServerHandle(httpd, runner, store).start()


def campaign_backends(state_dir, base_dir) -> Backends:
    """The compare family's local VLMs, as its jobs serve them, with the schema's training."""
    from ftdag.compare.steps import local_backends
    from ftdag.core.config import schema_defaults

    training = schema_defaults()["compare"]["training"]
    return Backends.coerce(local_backends(state_dir, base_dir, training)())


def load_backends(spec: str) -> Backends:
    """MODULE:ATTR, a Backends (or mapping) or a function of no arguments returning one."""
    module, _, attr = spec.partition(":")
    value = getattr(importlib.import_module(module), attr)
    return Backends.coerce(value() if callable(value) else value)


def main(argv=None, prog: str = "python -m ftdag.compare.server") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="ftdag's OpenAI-compatible server on 127.0.0.1; runs until SIGTERM/SIGINT. "
        "Without --backends it serves the compare family's models of a campaign's results "
        "(the baseline and every fine-tune) and fine-tunes new ones the same way.",
    )
    parser.add_argument("--results", type=Path, default=Path("results"), help="a campaign's")
    parser.add_argument("--state", type=Path, help="state directory (RESULTS/compare/server)")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    parser.add_argument("--backends", help="MODULE:ATTR giving the backends")
    parser.add_argument("--key-env", default="OPENAI_API_KEY", help="variable holding the key")
    parser.add_argument("--faults", help=f"faults as JSON (default: ${FAULTS_ENV})")
    parser.add_argument("--url-file", type=Path, help="write the base URL here when ready")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES)
    args = parser.parse_args(argv)
    key = os.environ.get(args.key_env)
    if not key:
        parser.error(f"no API key in ${args.key_env}")
    state = args.state or args.results / "compare" / "server"
    if args.backends:
        backends = load_backends(args.backends)
    else:
        base = args.results / "compare" / "models" / "base"
        if not base.is_dir():
            parser.error(f"no baseline model in {base}: run the compare family, or --backends")
        backends = campaign_backends(state, base)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    faults = args.faults or os.environ.get(FAULTS_ENV) or None
    args.state = state
    with serve(args.state, key, backends, args.port, faults, args.max_body_bytes) as handle:
        if args.url_file:
            atomic_write_text(args.url_file, handle.base_url + "\n")  # never read half-written
        else:
            print(handle.base_url, flush=True)
        log.info("serving %s from %s", handle.base_url, args.state)
        while not stop.wait(1.0):  # a timed wait: signals are handled between its waits
            pass
    if args.url_file:
        args.url_file.unlink(missing_ok=True)  # a stale URL would pass for a running server
    return 0


if __name__ == "__main__":
    sys.exit(main())
