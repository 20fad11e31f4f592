"""Provisioning latency for the patched resources.

AWS resources spend a while in transitional states (CREATING, Updating,
DELETING, ...); moto has none, so mskctl's waits would never be exercised.
A `Lifecycle` remembers the transitional state, when it began and which delay
applies; reading it settles lazily once that delay has passed, calling the
`finish` callback that decides the final state (and may consult faults).
"""

import os
import threading
import time
from collections.abc import Callable

# Delay name -> (environment variable, default seconds).
DELAYS = {
    "msk_create": ("EMULATOR_MSK_CREATE_SECONDS", 2.0),
    "msk_delete": ("EMULATOR_MSK_DELETE_SECONDS", 1.0),
    "esm": ("EMULATOR_ESM_SECONDS", 1.0),
    "pipe": ("EMULATOR_PIPE_SECONDS", 1.0),
    "iam": ("EMULATOR_IAM_PROPAGATION_SECONDS", 2.0),  # see iam.py
    "iam_mutation": ("EMULATOR_IAM_MUTATION_SECONDS", 0.3),  # see iam.py
    "tagging_lag": ("EMULATOR_TAGGING_LAG_SECONDS", 2.0),
    "ec2_consistency": ("EMULATOR_EC2_CONSISTENCY_SECONDS", 1.0),
    "lambda_vpc": ("EMULATOR_LAMBDA_VPC_SECONDS", 1.0),  # see vpc.py
    "lambda_eni_linger": ("EMULATOR_LAMBDA_ENI_LINGER_SECONDS", 2.0),
    "poller_eni_linger": ("EMULATOR_POLLER_ENI_LINGER_SECONDS", 2.0),  # see pollers.py
    "vpc_endpoint": ("EMULATOR_VPC_ENDPOINT_SECONDS", 1.0),
    "nat_gateway": ("EMULATOR_NAT_GATEWAY_SECONDS", 1.0),  # see vpc.py
}

_overrides: dict[str, float] = {}  # set through POST /_emulator/faults {"delays": ...}
_lock = threading.RLock()  # the server is threaded; settling must not run twice


def delay(name: str) -> float:
    if name in _overrides:
        return _overrides[name]
    env, default = DELAYS[name]
    return float(os.environ.get(env, default))


def override_delays(delays: dict[str, float]) -> None:
    unknown = set(delays) - set(DELAYS)
    if unknown:
        raise ValueError(f"unknown delay(s) {sorted(unknown)}; known: {sorted(DELAYS)}")
    _overrides.update({k: float(v) for k, v in delays.items()})


def clear_overrides() -> None:
    _overrides.clear()


def current_delays() -> dict[str, float]:
    return {name: delay(name) for name in DELAYS}


class Lifecycle:
    def __init__(self, state: str):
        self._state = state
        self._pending: tuple[float, str, Callable[[], str]] | None = None

    def begin(self, state: str, delay_name: str, finish: Callable[[], str]) -> None:
        with _lock:
            self._state = state
            self._pending = (time.monotonic(), delay_name, finish)

    def set(self, state: str) -> None:
        with _lock:
            self._state = state
            self._pending = None

    @property
    def in_transition(self) -> bool:
        self.current()
        return self._pending is not None

    def current(self) -> str:
        with _lock:
            if self._pending is not None:
                started, name, finish = self._pending
                if time.monotonic() - started >= delay(name):
                    self._pending = None
                    self._state = finish()
            return self._state
