"""SSM Parameter Store patch: PutParameter(Overwrite=false) is atomic.

mskctl's stack lock is an SSM parameter created with Overwrite=false: on AWS,
of two concurrent creates exactly one succeeds and the other gets
ParameterAlreadyExists. moto checks for an existing parameter, builds the new
one and appends it in separate steps, and the server is threaded, so two
concurrent creates can both succeed (both runs would then think they hold the
lock). Writes to the parameter store are serialised here.
"""

import functools
import threading
from typing import Any, Callable

from moto.ssm.models import SimpleSystemManagerBackend

_lock = threading.RLock()


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    wrapper.__emulator_serialised__ = True  # type: ignore[attr-defined]
    return wrapper


def patch_put_parameter_atomic() -> None:
    for name in ("put_parameter", "delete_parameter", "delete_parameters", "get_parameter"):
        method = getattr(SimpleSystemManagerBackend, name)
        if not getattr(method, "__emulator_serialised__", False):
            setattr(SimpleSystemManagerBackend, name, _serialised(method))
