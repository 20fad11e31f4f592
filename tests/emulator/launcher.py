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

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

import patches  # noqa: E402
import patches.execute_api  # noqa: E402
import patches.kafka_broker  # noqa: E402
import patches.kafka_esm_delivery  # noqa: E402


class QuietHandler(MotoRequestHandler):
    """One test server per test: keep the request log off unless asked for."""

    def log_request(self, *args: object, **kwargs: object) -> None:
        if os.environ.get("EMULATOR_LOG_REQUESTS"):
            super().log_request(*args, **kwargs)


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
    app = Latency(
        patches.kafka_broker.KafkaRoute(
            patches.execute_api.ExecuteApi(
                patches.faults.ControlApp(DomainDispatcherApplication(create_backend_app))
            )
        ),
        latency_ms(),
    )
    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)
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
