"""AWS's default request-rate limits: token buckets per account, Region and action family.

Moto answers every call however fast it comes; AWS throttles each account. With
`EMULATOR_THROTTLE=aws` the emulator keeps a token bucket per (account, Region, service,
family) with AWS's default size and refill rate (the table in `LIMITS`, each entry with its
source in tests/emulator/README.md). A call takes one token; a call that finds its bucket
empty is answered with the service's own throttling error (EC2 `RequestLimitExceeded` 503,
Lambda `TooManyRequestsException` 429, IAM/STS `Throttling` 400, SQS `RequestThrottled`,
Pipes `ThrottlingException` 429, MSK and API Gateway `TooManyRequestsException` 429, the
tagging API `ThrottledException`) and takes no token, as AWS does. Buckets refill
continuously at their rate (AWS adds the tokens once a second; continuous refill is the
kinder of the two by less than one second's worth).

- `EMULATOR_THROTTLE=aws|off` (default off: see README.md, "Request throttling", for why the
  integration tests leave it off and which tests and benchmarks turn it on);
- `EMULATOR_THROTTLE_SCALE=0.5` multiplies every bucket's size and refill rate (a size never
  goes below one token), e.g. to make a small test stack exceed a bucket.

The same settings go through `POST /_emulator/faults` as `{"throttle_mode": "aws",
"throttle_scale": 0.5}`; `GET /_emulator/faults` adds `throttled` (answers per
`service:Action`), `throttled_total` and the mode and scale in force; `POST
/_emulator/reset-faults` refills every bucket and zeroes the counts (the mode and scale
go back to the launcher's environment).
"""

import os
import threading
import time
import warnings
from typing import Any

from moto.core.responses import ActionResult, BaseResponse

from . import faults

# (bucket size, refill rate per second). Sources: tests/emulator/README.md.
EC2_NON_MUTATING = (100, 20)
EC2_UNFILTERED = (50, 10)
EC2_MUTATING = (50, 5)
EC2_RESOURCE_INTENSIVE = (50, 5)
EC2_UNFILTERED_ACTIONS = {
    "DescribeInstances", "DescribeInstanceStatus", "DescribeNetworkInterfaces",
    "DescribeSecurityGroups", "DescribeSnapshots", "DescribeSpotInstanceRequests",
    "DescribeVolumes",
}
EC2_RESOURCE_INTENSIVE_ACTIONS = {
    "AcceptVpcPeeringConnection", "AuthorizeSecurityGroupIngress", "CancelSpotInstanceRequests",
    "CreateKeyPair", "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection",
    "RejectVpcPeeringConnection", "RevokeSecurityGroupIngress", "RequestSpotInstances",
}
# EC2's "uncategorized actions" that mskctl (or its emulator) calls: their own sizes.
EC2_UNCATEGORIZED = {
    "CreateTags": (100, 10), "DeleteTags": (100, 10),
    "CreateNatGateway": (10, 1), "DeleteNatGateway": (10, 1),
    "CreateVpcEndpoint": (4, 0.3), "DeleteVpcEndpoints": (4, 0.3), "ModifyVpcEndpoint": (4, 0.3),
    "CreateNetworkInterface": (100, 5), "DeleteNetworkInterface": (100, 5),
    "ModifyNetworkInterfaceAttribute": (100, 5), "AssignPrivateIpAddresses": (100, 5),
    "DescribeSecurityGroupReferences": (20, 5), "DescribeStaleSecurityGroups": (20, 5),
}
LAMBDA_GET_FUNCTION = (100, 100)
LAMBDA_GET_POLICY = (15, 15)
LAMBDA_CONTROL_PLANE = (15, 15)  # all other control-plane actions together
LAMBDA_UNTHROTTLED = {"Invoke", "InvokeAsync", "InvokeWithResponseStream"}
APIGATEWAY_TOTAL = (40, 10)
# AWS publishes no default rate for these; the values are assumptions (README.md).
IAM_READ = (40, 20)
IAM_WRITE = (20, 10)
STS = (100, 100)
SQS_PER_ACTION = (100, 50)
SQS_DATA_PLANE = {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage",
                  "DeleteMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"}
PIPES_READ = (20, 20)
PIPES_WRITE = (10, 5)
KAFKA_READ = (20, 20)
KAFKA_WRITE = (10, 5)
TAGGING = (10, 5)

# The throttling answer of each service: (code, HTTP status).
ERRORS = {
    "ec2": ("RequestLimitExceeded", 503),
    "lambda": ("TooManyRequestsException", 429),
    "iam": ("Throttling", 400),
    "sts": ("Throttling", 400),
    "sqs": ("RequestThrottled", 400),
    "pipes": ("ThrottlingException", 429),
    "kafka": ("TooManyRequestsException", 429),
    "apigatewayv2": ("TooManyRequestsException", 429),
    "resourcegroupstaggingapi": ("ThrottledException", 400),
}

MODES = ("aws", "off")
_READ_PREFIXES = ("Describe", "List", "Get", "Search")


def _is_read(action: str) -> bool:
    return action.startswith(_READ_PREFIXES)


def _ec2_filtered(params: dict[str, Any]) -> bool:
    return any(k.startswith("Filter.") or k in ("MaxResults", "NextToken") for k in params)


def bucket_for(service: str, action: str, params: dict[str, Any] | None = None) -> tuple[str, tuple[float, float]] | None:
    """The bucket a call draws from: (family name, (size, refill per second)), or None
    when the call is not rate-limited here. Pure: the unit tests call it directly."""
    params = params or {}
    if service == "ec2":
        # EC2 evaluates each API on its own bucket, sized by the API's category.
        if action in EC2_UNCATEGORIZED:
            return action, EC2_UNCATEGORIZED[action]
        if action in EC2_RESOURCE_INTENSIVE_ACTIONS:
            return action, EC2_RESOURCE_INTENSIVE
        if _is_read(action):
            if action in EC2_UNFILTERED_ACTIONS and not _ec2_filtered(params):
                return f"{action}(unfiltered)", EC2_UNFILTERED
            return action, EC2_NON_MUTATING
        return action, EC2_MUTATING
    if service == "lambda":
        if action in LAMBDA_UNTHROTTLED:
            return None
        if action == "GetFunction":
            return "GetFunction", LAMBDA_GET_FUNCTION
        if action == "GetPolicy":
            return "GetPolicy", LAMBDA_GET_POLICY
        return "control-plane", LAMBDA_CONTROL_PLANE
    if service == "iam":
        return ("read", IAM_READ) if _is_read(action) else ("write", IAM_WRITE)
    if service == "sts":
        return "all", STS
    if service == "sqs":
        return None if action in SQS_DATA_PLANE else (action, SQS_PER_ACTION)
    if service == "pipes":
        return ("read", PIPES_READ) if _is_read(action) else ("write", PIPES_WRITE)
    if service == "kafka":
        return ("read", KAFKA_READ) if _is_read(action) else ("write", KAFKA_WRITE)
    if service == "apigatewayv2":
        return "total", APIGATEWAY_TOTAL
    if service == "resourcegroupstaggingapi":
        return "all", TAGGING
    return None


class Bucket:
    """A token bucket that refills continuously; `take` never waits."""

    def __init__(self, size: float, rate: float, now: float) -> None:
        self.size, self.rate, self.tokens, self.at = size, rate, size, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.size, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


_lock = threading.Lock()
_state: dict[str, Any] = {}


def _env_settings() -> dict[str, Any]:
    mode = (os.environ.get("EMULATOR_THROTTLE") or "off").strip().lower()
    if mode not in MODES:
        raise SystemExit(f"EMULATOR_THROTTLE must be one of {MODES}, not {mode!r}")
    raw = os.environ.get("EMULATOR_THROTTLE_SCALE") or "1"
    try:
        scale = float(raw)
    except ValueError:
        raise SystemExit(f"EMULATOR_THROTTLE_SCALE must be a positive number, not {raw!r}")
    if not scale > 0:
        raise SystemExit(f"EMULATOR_THROTTLE_SCALE must be a positive number, not {raw!r}")
    return {"mode": mode, "scale": scale}


def _reset_state(settings: dict[str, Any]) -> None:
    _state.clear()
    _state.update(settings, buckets={}, throttled={})


def configure(payload: dict[str, Any]) -> None:
    """Apply `throttle_mode` / `throttle_scale` from a control payload (validated first)."""
    mode = payload.get("throttle_mode")
    if mode is not None and mode not in MODES:
        raise ValueError(f"throttle_mode must be one of {MODES}")
    scale = payload.get("throttle_scale")
    if scale is not None and not float(scale) > 0:
        raise ValueError("throttle_scale must be a positive number")
    with _lock:
        if mode is not None:
            _state["mode"] = mode
        if scale is not None:
            _state["scale"] = float(scale)
            _state["buckets"].clear()


def counts() -> dict[str, Any]:
    with _lock:
        return {
            "throttle_mode": _state["mode"],
            "throttle_scale": _state["scale"],
            "throttled": dict(_state["throttled"]),
            "throttled_total": sum(_state["throttled"].values()),
        }


def admit(account: str, region: str, service: str, action: str, params: dict[str, Any] | None = None,
          now: float | None = None) -> bool:
    """Take a token for this call; False when its bucket is empty (and count the throttle)."""
    with _lock:
        if _state["mode"] != "aws":
            return True
        found = bucket_for(service, action, params)
        if found is None:
            return True
        family, (size, rate) = found
        now = time.monotonic() if now is None else now
        key = (account, region, service, family)
        bucket = _state["buckets"].get(key)
        if bucket is None:
            scale = _state["scale"]
            bucket = _state["buckets"][key] = Bucket(max(size * scale, 1.0), rate * scale, now)
        if bucket.take(now):
            return True
        name = f"{service}:{action}"
        _state["throttled"][name] = _state["throttled"].get(name, 0) + 1
        return False


class _Throttled(faults._Throttled):
    pass


def patch_default_rate_limits() -> None:
    _reset_state(_env_settings())

    # The control endpoint: settings in, counts out, reset with the other faults.
    original_add, original_reset, original_snapshot = faults.add, faults.reset, faults.snapshot

    def add(payload: dict[str, Any]) -> None:
        mine = {k: payload[k] for k in ("throttle_mode", "throttle_scale") if k in payload}
        rest = {k: v for k, v in payload.items() if k not in mine}
        configure(mine)
        original_add(rest)

    def reset() -> None:
        original_reset()
        with _lock:
            _reset_state(_env_settings())

    def snapshot() -> dict[str, Any]:
        return {**original_snapshot(), **counts()}

    faults.add, faults.reset, faults.snapshot = add, reset, snapshot

    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        service = self.boto3_service_name
        action = self._get_action() or ""
        params = self.querystring if service == "ec2" else None
        region = getattr(self, "region", "") or ""
        if admit(self.current_account, region, service, action, params):
            return original(self)
        code, status = ERRORS.get(service, ("ThrottlingException", 400))
        error = _Throttled(code, "Rate exceeded")
        with warnings.catch_warnings():  # moto warns when a code is not in the model
            warnings.simplefilter("ignore")
            _, headers, body = self.serialized(ActionResult(error))
        return status, headers, body

    BaseResponse.call_action = call_action
