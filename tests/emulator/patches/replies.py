"""Lost replies: AWS performs a call, then its answer never reaches the client.

A connection that drops, or a reply that arrives after the client gave up, leaves the
client not knowing whether a mutating call happened. AWS documents this as the reason
for idempotency ("Operations might also time out or encounter other server issues before
they complete, even though the request has already returned a result ... you might create
more resources than you intended", Ensuring idempotency in Amazon EC2 API requests,
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html). Moto always
answers, so nothing tested what a client does then.

`patch_dropped_replies` performs the call as usual and, when a drop is due, marks the
request; `respond` (called by the control middleware, faults.ControlApp) then throws the
reply away: it closes the connection without a byte of the answer (`reset`, the client
sees the connection closed / reset) or holds it open for `hang` seconds first (the client
times out). Only successful replies are dropped (the effect happened). Drops are due:

- per operation: `EMULATOR_DROP_REPLY="CreateVpc:1,ec2:CreateRoute:2,CreateRole"` drops the
  first 1 / 2 / 1 successful replies of each (`service:Operation` tells EC2's CreateRoute
  from API Gateway's; a bare name matches every service);
- at random: `EMULATOR_DROP_REPLY_RATE=0.05` drops 5 % of all successful replies
  (`EMULATOR_DROP_REPLY_SEED` makes the draw repeatable);
- `EMULATOR_DROP_REPLY_MODE=reset|hang|error` (default reset), `EMULATOR_DROP_REPLY_HANG_SECONDS`
  (default 30) for hang. `error` answers instead of dropping: HTTP 500 `InternalError`
  ("An internal error has occurred", in the service's own error format: XML for the
  query-protocol services EC2/IAM/STS, JSON with `x-amzn-ErrorType` for the others) although
  the call took effect. A 5xx tells the client nothing about whether a create happened: EC2's
  idempotency guide lists "server issues" next to timeouts, and the AWS SDKs' standard retry
  mode retries 500/502/503/504 and `InternalError`/`ServiceUnavailable` as transient errors
  ("Retry behavior", AWS SDKs and Tools Reference Guide), so a create answered this way is
  sent again blindly unless the client resolves it.

The same settings go through `POST /_emulator/faults` as `{"drop_reply": {"CreateVpc": 1},
"drop_reply_rate": 0.05, "drop_reply_mode": "hang", "drop_reply_hang_seconds": 2}`;
`GET /_emulator/faults` lists what is still due and every reply dropped so far
(`dropped`, as `service:Operation`), so a test can prove its drop happened.

`patch_client_tokens` makes CreateRouteTable and CreateVpcEndpoint honour ClientToken as
EC2 does (moto ignores it there): the same token with the same parameters returns the
resource the first request made; with other parameters, IdempotentParameterMismatch.
(CreateNatGateway's token is ec2.patch_nat_gateway_client_token.)
"""

import json
import os
import random
import socket
import struct
import threading
import time
from typing import Any

from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.route_tables import RouteTables
from moto.ec2.responses.vpcs import VPCs

_KEY = "emulator.drop_reply"
MODES = ("reset", "hang", "error")

_lock = threading.Lock()
_state: dict[str, Any] = {}
# The WSGI environ of the request this server thread is handling (set by `respond`).
_current = threading.local()


def _defaults() -> dict[str, Any]:
    return {"counts": {}, "rate": 0.0, "mode": "reset", "hang": 30.0, "dropped": [],
            "rng": random.Random()}


def parse_spec(spec: str) -> dict[str, int]:
    """`CreateVpc:1,ec2:CreateRoute:2,CreateRole` -> {"CreateVpc": 1, "ec2:CreateRoute": 2,
    "CreateRole": 1}."""
    counts: dict[str, int] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, count = item.rpartition(":")
        if not name or not count.isdigit():
            name, count = item, "1"
        if not name.replace(":", "").isalnum() or int(count) < 1:
            raise ValueError(f"bad drop_reply entry {item!r}: want Operation[:count] or service:Operation[:count]")
        counts[name] = counts.get(name, 0) + int(count)
    return counts


def _configure(state: dict[str, Any], payload: dict[str, Any]) -> None:
    counts = payload.get("drop_reply")
    if isinstance(counts, str):
        counts = parse_spec(counts)
    for name, count in (counts or {}).items():
        if int(count) < 1:
            raise ValueError(f"drop_reply {name}: count must be >= 1")
        state["counts"][name] = state["counts"].get(name, 0) + int(count)
    if "drop_reply_rate" in payload:
        rate = float(payload["drop_reply_rate"])
        if not 0 <= rate <= 1:
            raise ValueError("drop_reply_rate must be between 0 and 1")
        state["rate"] = rate
    if "drop_reply_seed" in payload:
        state["rng"] = random.Random(payload["drop_reply_seed"])
    if "drop_reply_mode" in payload:
        if payload["drop_reply_mode"] not in MODES:
            raise ValueError(f"drop_reply_mode must be one of {MODES}")
        state["mode"] = payload["drop_reply_mode"]
    if "drop_reply_hang_seconds" in payload:
        hang = float(payload["drop_reply_hang_seconds"])
        if hang < 0:
            raise ValueError("drop_reply_hang_seconds must not be negative")
        state["hang"] = hang


def from_env() -> dict[str, Any]:
    """The launcher environment's settings, as a control payload."""
    payload: dict[str, Any] = {}
    env = os.environ
    if env.get("EMULATOR_DROP_REPLY"):
        payload["drop_reply"] = env["EMULATOR_DROP_REPLY"]
    if env.get("EMULATOR_DROP_REPLY_RATE"):
        payload["drop_reply_rate"] = env["EMULATOR_DROP_REPLY_RATE"]
    if env.get("EMULATOR_DROP_REPLY_SEED"):
        payload["drop_reply_seed"] = env["EMULATOR_DROP_REPLY_SEED"]
    if env.get("EMULATOR_DROP_REPLY_MODE"):
        payload["drop_reply_mode"] = env["EMULATOR_DROP_REPLY_MODE"]
    if env.get("EMULATOR_DROP_REPLY_HANG_SECONDS"):
        payload["drop_reply_hang_seconds"] = env["EMULATOR_DROP_REPLY_HANG_SECONDS"]
    return payload


KEYS = {"drop_reply", "drop_reply_rate", "drop_reply_seed", "drop_reply_mode",
        "drop_reply_hang_seconds"}


def add(payload: dict[str, Any]) -> None:
    """Validate every setting first, then apply them together."""
    trial = _defaults()
    _configure(trial, payload)
    with _lock:
        _configure(_state, payload)


def reset() -> None:
    with _lock:
        _state.clear()
        _state.update(_defaults())


def snapshot() -> dict[str, Any]:
    with _lock:
        return {
            "drop_reply": dict(_state["counts"]),
            "drop_reply_rate": _state["rate"],
            "drop_reply_mode": _state["mode"],
            "dropped": list(_state["dropped"]),
        }


def _due(service: str, action: str) -> bool:
    with _lock:
        counts = _state["counts"]
        for key in (f"{service}:{action}", action):
            if counts.get(key, 0) > 0:
                counts[key] -= 1
                return True
        return _state["rate"] > 0 and _state["rng"].random() < _state["rate"]


def patch_dropped_replies() -> None:
    reset()
    _configure(_state, from_env())
    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        result = original(self)
        status = result[0] if isinstance(result, tuple) else 200
        environ = getattr(_current, "environ", None)
        if environ is None or not 200 <= int(status) < 300:
            return result
        action = self._get_action() or ""
        service = getattr(self, "boto3_service_name", None) or self.service_name
        if _due(service, action):
            environ[_KEY] = f"{service}:{action}"
        return result

    BaseResponse.call_action = call_action


def internal_error(dropped: str, environ: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes]:
    """A 500 `InternalError` answer in the protocol of the request: XML for the query
    protocol (form-encoded POST: EC2's `<Response><Errors>` shape, IAM/STS's
    `<ErrorResponse>`), JSON with `x-amzn-ErrorType` for JSON and REST-JSON services."""
    message = "An internal error has occurred"
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        if dropped.startswith("ec2:"):
            body = ("<Response><Errors><Error><Code>InternalError</Code>"
                    f"<Message>{message}</Message></Error></Errors>"
                    "<RequestID>emulator-internal-error</RequestID></Response>")
        else:
            body = ("<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code>"
                    f"<Message>{message}</Message></Error>"
                    "<RequestId>emulator-internal-error</RequestId></ErrorResponse>")
        return [("Content-Type", "text/xml")], body.encode()
    body = json.dumps({"__type": "InternalError", "message": message})
    return [("Content-Type", "application/json"), ("x-amzn-ErrorType", "InternalError")], body.encode()


def respond(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
    """Run the WSGI `app`; if the call's reply is to be dropped, drop it (or, in `error` mode,
    answer 500 instead). The app's own start_response is held back until that is known."""
    _current.environ = environ
    held: list[tuple[Any, ...]] = []
    decided = False

    def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if decided:  # a body that starts its response lazily, while being iterated
            return start_response(status, headers, exc_info)
        held[:] = [(status, headers, exc_info)]
        return lambda data: None  # moto and werkzeug never use write()

    try:
        body = app(environ, hold)
    finally:
        _current.environ = None
    dropped = environ.get(_KEY)
    if not dropped:
        decided = True
        if held:
            start_response(*held[0])
        return body
    if hasattr(body, "close"):
        body.close()
    with _lock:
        _state["dropped"].append(dropped)
        mode, hang = _state["mode"], _state["hang"]
    if mode == "error":
        headers, payload = internal_error(dropped, environ)
        start_response("500 Internal Server Error", headers + [("Content-Length", str(len(payload)))])
        return [payload]
    if mode == "hang":
        time.sleep(hang)
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            # Linger 0: the close that follows sends RST, as a dropped connection does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    # werkzeug treats a ConnectionError as a dropped connection: no answer, no error page.
    raise ConnectionResetError(f"emulator dropped the reply of {dropped}")


def _idempotent(cls: Any, method: str, params: tuple[str, ...], result_key: str,
                lookup: Any) -> None:
    original = getattr(cls, method)

    def create(self: Any) -> ActionResult:
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        tokens = self.ec2_backend.__dict__.setdefault(f"_emulator_{method}_tokens", {})
        request = tuple(repr(self._get_param(p)) for p in params)
        if token in tokens:
            made_id, earlier = tokens[token]
            if earlier != request:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"Client token {token} was already used with different parameters.",
                )
            made = lookup(self.ec2_backend, made_id)
            if made is not None:
                return ActionResult({"ClientToken": token, result_key: made})
        result = original(self)
        made = result.result[result_key]
        made_id = getattr(made, "id", None)
        tokens[token] = (made_id, request)
        return ActionResult({"ClientToken": token, result_key: made})

    setattr(cls, method, create)


def patch_client_tokens() -> None:
    # EC2 honours ClientToken on CreateRouteTable and CreateVpcEndpoint ("Idempotency using a
    # client token", ec2-api-idempotency.html); moto ignores it there, so a retried call made
    # a second route table or endpoint. The AWS SDKs fill CreateRouteTable's token by
    # themselves (an idempotency token in the API model), so their own retries are safe.
    _idempotent(RouteTables, "create_route_table", ("VpcId", "TagSpecifications"), "RouteTable",
                lambda b, i: b.route_tables.get(i))
    _idempotent(VPCs, "create_vpc_endpoint",
                ("VpcId", "ServiceName", "VpcEndpointType", "SubnetIds", "SecurityGroupIds",
                 "RouteTableIds", "PolicyDocument", "TagSpecifications"),
                "VpcEndpoint", lambda b, i: b.vpc_end_points.get(i))
