"""EventBridge Pipes patches: a timed lifecycle that honours DesiredState.

moto's pipe goes CREATING -> RUNNING through its state manager (ignoring
DesiredState STOPPED), has no UPDATING phase, keeps RUNNING after an update to
STOPPED, drops a deleted pipe at once, overwrites a pipe created twice, and
replaces SourceParameters on UpdatePipe although AWS's UpdatePipe only carries
the mutable members (BatchSize, MaximumBatchingWindowInSeconds, Credentials).

Pipes checks the role after the call answered, on UpdatePipe as on CreatePipe (see iam.py
for the propagation clock): an UpdatePipe right after the pipe's role was created, or had a
policy put on or attached to it, answers UPDATING and the pipe then goes UPDATE_FAILED with
the same StateReason as a failed create. Seen on AWS: a pipe whose role gains a permission
in the same deployment as the pipe change that needs it fails to update
(aws/aws-cdk#31664, "adding deadLetterTarget results in a failed update": the role's new
sqs:SendMessage was there, CloudFormation did not wait for it to propagate); Terraform's
waitPipeUpdated (internal/service/pipes/wait.go) waits UPDATING -> RUNNING/STOPPED and fails
on anything else with the pipe's StateReason. Unlike CREATE_FAILED, an UPDATE_FAILED pipe
takes another UpdatePipe (it is not transitional), which checks the role again.
"""

import copy
from typing import Any

from moto.pipes.exceptions import ConflictException, NotFoundException
from moto.pipes.models import EventBridgePipesBackend, Pipe

from . import faults, iam
from .lifecycle import Lifecycle

TRANSITIONAL = {"CREATING", "UPDATING", "STARTING", "STOPPING", "DELETING"}


def _settle_to_desired(pipe: Pipe, failure: str) -> str:
    """Final state after a transition; `failure` is the fault that may apply."""
    pipe.state_reason = None
    fault = faults.pipe_fault(pipe.name, failure)
    if fault is None and failure in ("CREATE_FAILED", "UPDATE_FAILED") and getattr(pipe, "_role_unready", False):
        # Pipes checks the role after CreatePipe/UpdatePipe answered; see iam.py.
        fault = {"state": failure, "stateReason": role_not_ready_reason(pipe.source)}
    if fault is None and failure == "CREATE_FAILED" and pipe.desired_state == "RUNNING":
        fault = faults.pipe_fault(pipe.name, "START_FAILED")
    if fault:
        pipe.state_reason = fault.get("stateReason", "Pipe failed.")
        return fault["state"]
    return "STOPPED" if pipe.desired_state == "STOPPED" else "RUNNING"


def role_not_ready_reason(source: str) -> str:
    """AWS's StateReason when the role's permissions are not visible to Pipes (for an SQS
    source: "... to call ReceiveMessage on SQS"); the Kafka source names its first call."""
    service, action = ("SQS", "ReceiveMessage") if ":sqs:" in (source or "") else ("Kafka", "DescribeClusterV2")
    return ("Input parameter is invalid from the request due to : The provided customer role does not "
            f"have permissions to call {action} on {service}")


def _begin(pipe: Pipe, state: str, failure: str) -> None:
    pipe._lifecycle.begin(state, "pipe", lambda: _settle_to_desired(pipe, failure))


def _merge(base: dict[str, Any] | None, update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base or {})
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def patch_pipe_lifecycle() -> None:
    # See the module docstring; transitions take EMULATOR_PIPE_SECONDS.
    original_init = Pipe.__init__
    original_create = EventBridgePipesBackend.create_pipe
    original_update = EventBridgePipesBackend.update_pipe
    original_list = EventBridgePipesBackend.list_pipes

    def __init__(self: Pipe, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._role_unready = iam.policies_are_new(self.role_arn)
        self._lifecycle = Lifecycle("CREATING")
        _begin(self, "CREATING", "CREATE_FAILED")

    Pipe.__init__ = __init__
    Pipe.current_state = property(lambda self: self._lifecycle.current())

    def purge(backend: EventBridgePipesBackend) -> None:
        for pipe in list(backend.pipes.values()):
            pipe.current_state  # a finished delete removes the pipe

    def existing(backend: EventBridgePipesBackend, name: str) -> Pipe:
        purge(backend)
        if name not in backend.pipes:
            raise NotFoundException(f"Pipe {name} does not exist.")
        return backend.pipes[name]

    def not_transitional(pipe: Pipe, verb: str) -> None:
        state = pipe.current_state
        if state in TRANSITIONAL:
            raise ConflictException(f"Pipe {pipe.name} cannot be {verb} while it is {state}.", pipe.name, "pipe")

    def create_pipe(self: EventBridgePipesBackend, name: str, **kwargs: Any) -> Pipe:
        purge(self)
        if name in self.pipes:
            raise ConflictException(f"Pipe {name} already exists.", name, "pipe")
        return original_create(self, name=name, **kwargs)

    def update_pipe(self: EventBridgePipesBackend, name: str, source_parameters: Any = None, **kwargs: Any) -> Pipe:
        pipe = existing(self, name)
        not_transitional(pipe, "updated")
        merged = _merge(pipe.source_parameters, source_parameters) if source_parameters else None
        pipe = original_update(self, name=name, source_parameters=merged, **kwargs)
        # The role the update names (a new one, or the same one with new policies).
        pipe._role_unready = iam.policies_are_new(pipe.role_arn)
        _begin(pipe, "UPDATING", "UPDATE_FAILED")
        return pipe

    def describe_pipe(self: EventBridgePipesBackend, name: str) -> Pipe:
        return existing(self, name)

    def delete_pipe(self: EventBridgePipesBackend, name: str) -> Pipe:
        pipe = existing(self, name)

        def gone() -> str:
            self.pipes.pop(name, None)
            return "DELETED"

        if pipe.current_state != "DELETING":
            pipe.desired_state = "DELETED"
            pipe._lifecycle.begin("DELETING", "pipe", gone)
        return pipe

    def start_pipe(self: EventBridgePipesBackend, name: str) -> Pipe:
        pipe = existing(self, name)
        not_transitional(pipe, "started")
        pipe.desired_state = "RUNNING"
        if pipe.current_state != "RUNNING":
            _begin(pipe, "STARTING", "START_FAILED")
        return pipe

    def stop_pipe(self: EventBridgePipesBackend, name: str) -> Pipe:
        pipe = existing(self, name)
        not_transitional(pipe, "stopped")
        pipe.desired_state = "STOPPED"
        if pipe.current_state != "STOPPED":
            _begin(pipe, "STOPPING", "STOP_FAILED")
        return pipe

    def list_pipes(self: EventBridgePipesBackend, *args: Any, **kwargs: Any) -> Any:
        purge(self)
        return original_list(self, *args, **kwargs)

    EventBridgePipesBackend.create_pipe = create_pipe
    EventBridgePipesBackend.update_pipe = update_pipe
    EventBridgePipesBackend.describe_pipe = describe_pipe
    EventBridgePipesBackend.delete_pipe = delete_pipe
    EventBridgePipesBackend.start_pipe = start_pipe
    EventBridgePipesBackend.stop_pipe = stop_pipe
    EventBridgePipesBackend.list_pipes = list_pipes
