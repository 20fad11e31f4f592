"""Local AWS emulator for mskctl's tests: moto's server plus mskctl's patches.

There is no AWS account for tests, so they run against moto (pinned in
requirements.txt). Moto 5.2.5 misses a few behaviours mskctl depends on (MSK
lifecycle and bootstrap brokers, Kafka event source mappings, ...); the
`patches` package fills them in before the server starts, and adds a
`/_emulator/*` control endpoint for fault injection. See README.md.

    launcher.py [--host 127.0.0.1] [--port 4566]

`--port 0` picks a free port. Once listening, it prints exactly one line,
`EMULATOR_READY http://HOST:PORT`, on stdout; SIGTERM or SIGINT stops it.
It also runs a local Kafka-protocol broker (patches/kafka_broker.py) for as
long as it lives; `GET /_emulator/kafka` tells its address.
"""

import argparse
import os
import signal
import sys
import threading
import time

# Read by moto at import time: AttachRolePolicy with AWS managed policies
# (AWSLambdaBasicExecutionRole, ...) needs them loaded.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
sys.dont_write_bytecode = True  # keep patches/__pycache__ out of the work tree

from moto.core.base_backend import BackendDict  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DEFAULT_SERVICE_REGION,
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.exceptions import InternalServerError  # noqa: E402
from werkzeug.serving import connection_dropped_errors, make_server  # noqa: E402
from werkzeug.wsgi import LimitedStream  # noqa: E402

import patches  # noqa: E402
import patches.execute_api  # noqa: E402
import patches.kafka_broker  # noqa: E402
import patches.kafka_esm_delivery  # noqa: E402


class QuietHandler(MotoRequestHandler):
    """One test server per test: keep the request log off unless asked for."""

    def log_request(self, *args: object, **kwargs: object) -> None:
        if os.environ.get("EMULATOR_LOG_REQUESTS"):
            super().log_request(*args, **kwargs)


class KeepAliveHandler(QuietHandler):
    """Werkzeug's development server answers every request with `Connection: close`, so
    each AWS call paid a new TCP connection and a new server thread; AWS endpoints keep
    connections alive (HTTP/1.1), and the SDKs reuse them. This handler keeps a connection
    for the client's next request once the request's body (its Content-Length) is read to
    its end. A request with a chunked body, or a client asking `Connection: close`, is
    handled as before (connection closed). Status line, headers and a one-piece body go in
    one write, with Nagle's algorithm off (a second small write would wait for the
    client's delayed ACK). A reply dropped on purpose (patches/replies.py) still resets
    the connection."""

    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        if "Transfer-Encoding" in self.headers or (length is not None and not length.isdigit()):
            self.close_connection = True
            return super().run_wsgi()
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        body = LimitedStream(self.rfile, int(length or 0))
        environ["wsgi.input"] = body
        reply: dict[str, object] = {"status": None, "headers": None, "sent": False, "chunked": False}

        def write(data: bytes) -> None:
            out: list[bytes] = []
            if not reply["sent"]:
                reply["sent"] = True
                code, _, reason = str(reply["status"]).partition(" ")
                self.send_response(int(code), reason)
                names = set()
                for name, value in reply["headers"]:  # type: ignore[attr-defined]
                    self.send_header(name, value)
                    names.add(name.lower())
                bodiless = self.command == "HEAD" or int(code) < 200 or int(code) in (204, 304)
                if "content-length" not in names and not bodiless:
                    reply["chunked"] = True
                    self.send_header("Transfer-Encoding", "chunked")
                if self.close_connection:
                    self.send_header("Connection", "close")
                self._headers_buffer.append(b"\r\n")
                out.append(b"".join(self._headers_buffer))
                self._headers_buffer = []
            if data and self.command != "HEAD":
                out.append(b"%x\r\n%s\r\n" % (len(data), data) if reply["chunked"] else data)
            if out:
                self.wfile.write(b"".join(out))

        def start_response(status: str, headers: list, exc_info: object = None) -> object:
            if exc_info and reply["sent"]:
                raise exc_info[1].with_traceback(exc_info[2])  # type: ignore[index]
            reply["status"], reply["headers"] = status, headers
            return write

        def execute(app: object) -> None:
            result = app(environ, start_response)  # type: ignore[operator]
            try:
                for data in result:
                    write(data)
                if not reply["sent"]:
                    write(b"")
                if reply["chunked"]:
                    self.wfile.write(b"0\r\n\r\n")
            finally:
                if hasattr(result, "close"):
                    result.close()
            body.exhaust()  # the next request starts after this one's body

        try:
            execute(self.server.app)
        except connection_dropped_errors as error:
            self.close_connection = True
            self.connection_dropped(error, environ)
        except Exception as error:  # as werkzeug's own handler: a 500 if nothing was sent
            self.close_connection = True
            if not reply["sent"]:
                try:
                    reply["status"] = None
                    execute(InternalServerError())
                except Exception:
                    pass
            self.server.log("error", f"Error on request: {error!r}")


class Dispatcher(DomainDispatcherApplication):
    """Moto's dispatcher, resolving each request's service faster. Moto works out the backend
    of every request anew, under one lock shared by all requests: it lists moto's package
    directory (a `stat` per service, about 250) and tries every service's URL patterns. The
    same host always resolves to the same backend, so each host is resolved once."""

    def __init__(self, create_app: object) -> None:
        super().__init__(create_app)
        self._backend_of: dict[object, object] = {}

    def get_backend_for_host(self, host: str | None) -> object:
        try:
            return self._backend_of[host]
        except KeyError:
            backend = super().get_backend_for_host(host)
            self._backend_of[host] = backend
            return backend

    def get_application(self, environ: dict) -> object:
        # Moto's own, with the lock taken only to create a service's app (once): resolving
        # is now a dictionary look-up that needs none.
        path = environ.get("PATH_INFO", "")
        if isinstance(path, bytes):
            path = path.decode("utf-8")
        if path.startswith("/moto-api") or path == "/favicon.ico":
            host = "moto_api"
        elif path.startswith(("/latest/meta-data/", "/latest/api/")):
            host = "instance_metadata"
        else:
            host = None
        backend = self.get_backend_for_host(host)
        if not backend:
            host = self.infer_service_region_host(environ, path)
            if host is None:
                service, region = DEFAULT_SERVICE_REGION
                host = f"{service}.{region}.amazonaws.com"
            backend = self.get_backend_for_host(host)
        app = self.app_instances.get(backend)
        if app is None:
            with self.lock:
                app = self.app_instances.get(backend)
                if app is None:
                    app = self.app_instances[backend] = self.create_app(backend)
        return app


def speed_up_backend_lookups() -> None:
    """Moto looks up an account's backends (`backends[account]`, several times per request)
    under one global lock, scanning its list of every service's backends each time: with
    dozens of requests in flight they queue behind that lock. Once an account's backend
    exists and the service is listed, nothing is left to do, and no lock is needed to see
    that (the lock still guards creation)."""
    original = BackendDict._create_account_specific_backend

    def create_account_specific_backend(self: BackendDict, account_id: str) -> None:
        if dict.__contains__(self, account_id) and self.__dict__.get("_emulator_listed"):
            return
        original(self, account_id)
        self._emulator_listed = True

    BackendDict._create_account_specific_backend = create_account_specific_backend


class Latency:
    """Adds `EMULATOR_LATENCY_MS` milliseconds to every AWS API request (not to the control
    endpoint or moto's own), like a round trip to a distant AWS region. The server is
    threaded, so concurrent requests wait concurrently."""

    def __init__(self, app: object, ms: float) -> None:
        self.app = app
        self.seconds = ms / 1000

    def __call__(self, environ: dict, start_response: object) -> object:
        path = environ.get("PATH_INFO", "")
        if self.seconds > 0 and not path.startswith(("/_emulator/", "/moto-api/")):
            time.sleep(self.seconds)
        return self.app(environ, start_response)


def latency_ms() -> float:
    raw = os.environ.get("EMULATOR_LATENCY_MS", "0") or "0"
    try:
        value = float(raw)
    except ValueError:
        sys.exit(f"EMULATOR_LATENCY_MS must be a number of milliseconds, not {raw!r}")
    if value < 0:
        sys.exit(f"EMULATOR_LATENCY_MS must not be negative, not {raw!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566, help="0 picks a free port")
    args = parser.parse_args()

    patches.apply_all()
    speed_up_backend_lookups()
    app = Latency(
        patches.kafka_broker.KafkaRoute(
            patches.execute_api.ExecuteApi(
                patches.faults.ControlApp(Dispatcher(create_backend_app))
            )
        ),
        latency_ms(),
    )
    server = make_server(args.host, args.port, app, threaded=True, request_handler=KeepAliveHandler)
    host, port = server.server_address[:2]
    patches.lambda_invoke.set_endpoint(f"http://{host}:{port}")
    # Before the server's threads: the broker is forked with a parent-death signal.
    try:
        patches.kafka_broker.start()
    except RuntimeError as error:
        server.server_close()
        sys.exit(f"emulator: {error}")
    patches.kafka_esm_delivery.start()

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever to return: call it off this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    print(f"EMULATOR_READY http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        patches.kafka_esm_delivery.stop()
        patches.kafka_broker.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
