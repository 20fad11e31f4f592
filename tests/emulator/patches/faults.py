"""Fault injection for tests: the `/_emulator/*` control endpoint.

Faults are registered with `POST /_emulator/faults` (JSON, see README.md) and
consulted by the lifecycle patches when a transition ends, or by the throttle
patch before an action runs. `POST /_emulator/reset-faults` clears them all.
"""

import json
import threading
import warnings
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse, get_service_model

from . import lifecycle, replies

_lock = threading.Lock()
_faults: dict[str, Any] = {"esm": [], "pipes": [], "msk": [], "throttle": {}}

PIPE_FAILURES = {"CREATE_FAILED", "START_FAILED", "UPDATE_FAILED", "STOP_FAILED"}


def add(payload: dict[str, Any]) -> None:
    unknown = set(payload) - {"esm", "pipes", "msk", "throttle", "delays"} - replies.KEYS
    if unknown:
        raise ValueError(f"unknown fault kind(s) {sorted(unknown)}")
    for esm in payload.get("esm", []):
        if not (esm.get("functionName") or esm.get("topic")):
            raise ValueError("an esm fault needs functionName or topic")
    for pipe in payload.get("pipes", []):
        if pipe.get("state") not in PIPE_FAILURES or not pipe.get("name"):
            raise ValueError(f"a pipe fault needs name and state in {sorted(PIPE_FAILURES)}")
    for msk in payload.get("msk", []):
        if not msk.get("clusterName"):
            raise ValueError("an msk fault needs clusterName")
    for throttle in payload.get("throttle", []):
        if not throttle.get("action") or int(throttle.get("count", 1)) < 1:
            raise ValueError("a throttle fault needs action and count >= 1")
    replies.add({k: v for k, v in payload.items() if k in replies.KEYS})
    with _lock:
        lifecycle.override_delays(payload.get("delays", {}))
        _faults["esm"].extend(payload.get("esm", []))
        _faults["pipes"].extend(payload.get("pipes", []))
        _faults["msk"].extend(payload.get("msk", []))
        for throttle in payload.get("throttle", []):
            _faults["throttle"][throttle["action"]] = {
                "remaining": int(throttle.get("count", 1)),
                "code": throttle.get("code"),
                "status": throttle.get("status"),
            }


def reset() -> None:
    with _lock:
        for kind in ("esm", "pipes", "msk"):
            _faults[kind].clear()
        _faults["throttle"].clear()
        lifecycle.clear_overrides()
    replies.reset()


def snapshot() -> dict[str, Any]:
    with _lock:
        faults = {**json.loads(json.dumps(_faults)), "delays": lifecycle.current_delays()}
    return {**faults, **replies.snapshot()}


def esm_fault(function_arn: str, topics: list[str]) -> dict[str, Any] | None:
    name = function_arn.split(":function:")[-1].split(":")[0]
    for fault in _faults["esm"]:
        wanted_fn = fault.get("functionName")
        if wanted_fn and wanted_fn not in (name, function_arn):
            continue
        if fault.get("topic") and fault["topic"] not in topics:
            continue
        return fault
    return None


def pipe_fault(name: str, failure: str) -> dict[str, Any] | None:
    return next(
        (f for f in _faults["pipes"] if f["name"] == name and f["state"] == failure), None
    )


def msk_fault(cluster_name: str) -> dict[str, Any] | None:
    return next((f for f in _faults["msk"] if f["clusterName"] == cluster_name), None)


def _take_throttle(action: str) -> dict[str, Any] | None:
    with _lock:
        fault = _faults["throttle"].get(action)
        if not fault or fault["remaining"] < 1:
            return None
        fault["remaining"] -= 1
        return fault


class _Throttled(ServiceException):
    pass


def _throttling_error(response: BaseResponse) -> tuple[str, int]:
    """The throttling error a service declares (Lambda and MSK: 429 TooManyRequestsException)."""
    if response.service_name == "ec2":
        return "RequestLimitExceeded", 400
    model = get_service_model(response.boto3_service_name)
    for name in ("ThrottlingException", "TooManyRequestsException"):
        if name in model.shape_names:
            return name, model.shape_for(name).metadata.get("error", {}).get("httpStatusCode", 400)
    return "ThrottlingException", 400


def patch_throttling() -> None:
    # Moto never throttles; answering the next N calls of an action with the
    # service's throttling error lets tests prove that mskctl retries.
    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        fault = _take_throttle(self._get_action() or "")
        if fault is None:
            return original(self)
        code, status = _throttling_error(self)
        error = _Throttled(fault["code"] or code, "Rate exceeded")
        with warnings.catch_warnings():  # moto warns when a code is not in the model
            warnings.simplefilter("ignore")
            _, headers, body = self.serialized(ActionResult(error))
        return fault["status"] or status, headers, body

    BaseResponse.call_action = call_action


class ControlApp:
    """WSGI middleware answering /_emulator/* and passing the rest to moto."""

    def __init__(self, app: Any):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_emulator/"):
            return replies.respond(self.app, environ, start_response)
        method = environ["REQUEST_METHOD"]
        try:
            if path == "/_emulator/faults" and method == "GET":
                return _reply(start_response, 200, snapshot())
            if path == "/_emulator/faults" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                add(json.loads(environ["wsgi.input"].read(length) or b"{}"))
                return _reply(start_response, 200, snapshot())
            if path == "/_emulator/reset-faults" and method == "POST":
                reset()
                return _reply(start_response, 200, snapshot())
        except (ValueError, TypeError, AttributeError) as error:
            return _reply(start_response, 400, {"error": str(error)})
        return _reply(start_response, 404, {"error": f"no {method} {path}"})


def _reply(start_response: Any, status: int, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
