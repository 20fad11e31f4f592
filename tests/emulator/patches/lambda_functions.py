"""Lambda function patches: dead-letter config, other accounts' layers, tracing and
reserved concurrency."""

import os
import re
from typing import Any

from moto.awslambda.models import LambdaFunction

# A layer version ARN: arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION
LAYER_VERSION_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:(?P<account>\d{12}):layer:[\w-]+:\d+$"
)


def patch_dead_letter_config() -> None:
    # moto drops DeadLetterConfig on CreateFunction and UpdateFunctionConfiguration
    # and never returns it from GetFunction/GetFunctionConfiguration/ListFunctions.
    original_init = LambdaFunction.__init__
    original_update = LambdaFunction.update_configuration
    original_get = LambdaFunction.get_configuration

    def __init__(self: LambdaFunction, account_id: str, spec: dict[str, Any], *a: Any, **kw: Any) -> None:
        self.dead_letter_target = (spec.get("DeadLetterConfig") or {}).get("TargetArn")
        original_init(self, account_id, spec, *a, **kw)

    def update_configuration(self: LambdaFunction, updates: dict[str, Any]) -> dict[str, Any]:
        if "DeadLetterConfig" in updates:
            # An empty TargetArn (or {}) removes the dead-letter queue, as on AWS.
            self.dead_letter_target = (updates["DeadLetterConfig"] or {}).get("TargetArn") or None
        return original_update(self, updates)

    def get_configuration(self: LambdaFunction, on_create: bool = False) -> dict[str, Any]:
        config = original_get(self, on_create)
        if getattr(self, "dead_letter_target", None):
            config["DeadLetterConfig"] = {"TargetArn": self.dead_letter_target}
        return config

    LambdaFunction.__init__ = __init__
    LambdaFunction.update_configuration = update_configuration
    LambdaFunction.get_configuration = get_configuration


def patch_other_accounts_layers() -> None:
    # moto only knows layers published in the emulator, so public layers of other
    # accounts (AWSSDKPandas, ...) fail CreateFunction with "LayerVersion does
    # not exist". AWS accepts them; the emulator cannot know their CodeSize.
    original = LambdaFunction._get_layers_data

    def _get_layers_data(self: LambdaFunction, arns: list[str]) -> list[dict[str, Any]]:
        def foreign(arn: str) -> bool:
            match = LAYER_VERSION_ARN.match(arn)
            return bool(match) and match["account"] != self.account_id

        local = iter(original(self, [a for a in arns if not foreign(a)]))
        return [{"Arn": a} if foreign(a) else next(local) for a in arns]

    LambdaFunction._get_layers_data = _get_layers_data


def patch_event_invoke_config_put_replaces() -> None:
    # moto appends each PutFunctionEventInvokeConfig to a list and Get returns the
    # first entry, so a second put is never seen; on AWS a put replaces the config.
    from moto.awslambda.models import EventInvokeConfig, LambdaBackend

    def put_function_event_invoke_config(self: LambdaBackend, function_name: str, config: dict[str, Any]) -> dict[str, Any]:
        fn = self.get_function(function_name)
        event_config = EventInvokeConfig(fn.function_arn, fn.last_modified, config)
        fn.event_invoke_config = [event_config]
        return event_config.response()

    LambdaBackend.put_function_event_invoke_config = put_function_event_invoke_config


ROLE_NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."
NO_SEND_MESSAGE = "The provided execution role does not have permissions to call SendMessage on SQS"
NO_PUT_TRACE_SEGMENTS = "The provided execution role does not have permissions to call PutTraceSegments on XRAY"


def check_role_propagated(role_arn: str, dead_letter_target: str | None, tracing: str | None = None) -> None:
    """What Lambda answers while the role, or its new policies, have not propagated (iam.py)."""
    from moto.awslambda.exceptions import LambdaClientError

    from . import iam

    if iam.role_is_new(role_arn):
        raise LambdaClientError("InvalidParameterValueException", ROLE_NOT_ASSUMABLE)
    if dead_letter_target and ":sqs:" in dead_letter_target and iam.policies_are_new(role_arn):
        raise LambdaClientError("InvalidParameterValueException", NO_SEND_MESSAGE)
    if tracing == "Active" and iam.policies_are_new(role_arn):
        raise LambdaClientError("InvalidParameterValueException", NO_PUT_TRACE_SEGMENTS)


def patch_role_propagation() -> None:
    # CreateFunction / UpdateFunctionConfiguration right after the role was created
    # or its policies changed: AWS refuses them until IAM propagates (iam.py).
    from moto.awslambda.models import LambdaBackend

    original_create = LambdaBackend.create_function
    original_update = LambdaBackend.update_function_configuration

    def create_function(self: LambdaBackend, spec: dict[str, Any]) -> LambdaFunction:
        dlq = (spec.get("DeadLetterConfig") or {}).get("TargetArn")
        tracing = (spec.get("TracingConfig") or {}).get("Mode")
        check_role_propagated(spec.get("Role", ""), dlq, tracing)
        return original_create(self, spec)

    def update_function_configuration(self: LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
        if "Role" in body or "DeadLetterConfig" in body or "TracingConfig" in body:
            fn = self.get_function(function_name, qualifier)
            dlq = (body.get("DeadLetterConfig") or {}).get("TargetArn") if "DeadLetterConfig" in body \
                else getattr(fn, "dead_letter_target", None)
            tracing = (body.get("TracingConfig") or fn.tracing_config or {}).get("Mode")
            check_role_propagated(body.get("Role") or fn.role, dlq, tracing)
        return original_update(self, function_name, qualifier, body)

    LambdaBackend.create_function = create_function
    LambdaBackend.update_function_configuration = update_function_configuration


def patch_tracing_config_update() -> None:
    # moto keeps the TracingConfig given to CreateFunction but ignores it in
    # UpdateFunctionConfiguration, so turning X-Ray tracing on or off never shows.
    original_update = LambdaFunction.update_configuration

    def update_configuration(self: LambdaFunction, updates: dict[str, Any]) -> dict[str, Any]:
        mode = (updates.get("TracingConfig") or {}).get("Mode")
        if mode is not None:
            if mode not in ("Active", "PassThrough"):
                from moto.awslambda.exceptions import LambdaClientError

                raise LambdaClientError(
                    "ValidationException",
                    f"1 validation error detected: Value '{mode}' at 'tracingConfig.mode' failed to satisfy "
                    "constraint: Member must satisfy enum value set: [Active, PassThrough]",
                )
            self.tracing_config = {"Mode": mode}
        return original_update(self, updates)

    LambdaFunction.update_configuration = update_configuration


# AWS's default concurrency limit per account and region (Lambda quotas); 100 of it always
# stays unreserved.
ACCOUNT_CONCURRENCY_LIMIT = "1000"


def patch_reserved_concurrency() -> None:
    # moto omits GetFunction's `Concurrency` when the reservation is 0 (a falsy value), so a
    # function reserved to 0 (every invocation throttled) reads as having no reservation; and
    # it enforces no account limit unless MOTO_LAMBDA_CONCURRENCY_QUOTA is set.
    os.environ.setdefault("MOTO_LAMBDA_CONCURRENCY_QUOTA", ACCOUNT_CONCURRENCY_LIMIT)
    original_get = LambdaFunction.get_code

    def get_code(self: LambdaFunction) -> dict[str, Any]:
        resp = original_get(self)
        if self.reserved_concurrency is not None and "Concurrency" not in resp:
            resp["Concurrency"] = {"ReservedConcurrentExecutions": int(self.reserved_concurrency)}
        return resp

    LambdaFunction.get_code = get_code
