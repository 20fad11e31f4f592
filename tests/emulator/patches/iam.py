"""IAM propagation: a role, or a policy newly put on or attached to it, takes a while to be usable.

IAM is eventually consistent ("changes ... can take time to become visible",
IAM User Guide, "Changes that I make are not always immediately visible").
Right after CreateRole, Lambda cannot assume the role yet; right after
PutRolePolicy/AttachRolePolicy, the services that check the role's permissions
do not see the new ones. Moto applies everything at once, so mskctl's retries
would never run. This module remembers when each role last changed; the
Lambda, event source mapping and Pipes patches ask it whether a role is usable
yet. The window is the `iam` delay (EMULATOR_IAM_PROPAGATION_SECONDS).

IAM also serialises changes to one role: a PutRolePolicy, AttachRolePolicy,
DetachRolePolicy, DeleteRolePolicy, UpdateAssumeRolePolicy or UpdateRole that
arrives while another such change of the same role is in progress is refused
with 409 `ConcurrentModification` ("Another request updating the entity is in
progress. Please try again later.": IAM API reference, common errors of these
actions; terraform-provider-aws#34371 and #39421, retried by the provider since
#34378 and #39429). Moto applies concurrent changes at once. Each change here
holds its role for the `iam_mutation` delay (EMULATOR_IAM_MUTATION_SECONDS,
0.3 s) after it took effect, and a second change of the role within that time
is refused; changes one after another never collide.
"""

import threading
import time
from typing import Any

from moto.iam.exceptions import IAMException
from moto.iam.models import IAMBackend

from . import lifecycle

_lock = threading.Lock()
# (account, role name) -> (monotonic time of CreateRole, of the last policy change)
_changes: dict[tuple[str, str], tuple[float | None, float | None]] = {}


def _key(role_arn: str) -> tuple[str, str] | None:
    # arn:aws:iam::ACCOUNT:role/optional/path/NAME
    parts = (role_arn or "").split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return None
    return parts[4], parts[5].rsplit("/", 1)[-1]


def _recent(at: float | None) -> bool:
    return at is not None and time.monotonic() - at < lifecycle.delay("iam")


def role_is_new(role_arn: str) -> bool:
    """The role was created less than the propagation delay ago."""
    key = _key(role_arn)
    with _lock:
        created, _ = _changes.get(key, (None, None)) if key else (None, None)
    return _recent(created)


def policies_are_new(role_arn: str) -> bool:
    """The role was created, or had a policy put or attached, less than the delay ago."""
    key = _key(role_arn)
    with _lock:
        created, changed = _changes.get(key, (None, None)) if key else (None, None)
    return _recent(created) or _recent(changed)


def _record(account: str, role_name: str, created: bool) -> None:
    now = time.monotonic()
    with _lock:
        was_created, _ = _changes.get((account, role_name), (None, None))
        _changes[(account, role_name)] = (now if created else was_created, now)


def patch_iam_propagation() -> None:
    # See the module docstring.
    original_create = IAMBackend.create_role
    original_put = IAMBackend.put_role_policy
    original_attach = IAMBackend.attach_role_policy

    def create_role(self: IAMBackend, role_name: str, *args: Any, **kwargs: Any) -> Any:
        role = original_create(self, role_name, *args, **kwargs)
        _record(self.account_id, role_name, created=True)
        return role

    def put_role_policy(self: IAMBackend, role_name: str, *args: Any, **kwargs: Any) -> None:
        original_put(self, role_name, *args, **kwargs)
        _record(self.account_id, role_name, created=False)

    def attach_role_policy(self: IAMBackend, policy_arn: str, role_name: str) -> None:
        original_attach(self, policy_arn, role_name)
        _record(self.account_id, role_name, created=False)

    IAMBackend.create_role = create_role
    IAMBackend.put_role_policy = put_role_policy
    IAMBackend.attach_role_policy = attach_role_policy


class ConcurrentModification(IAMException):
    code = "ConcurrentModification"

    def __init__(self) -> None:
        super().__init__("Another request updating the entity is in progress. Please try again later.")


_busy_lock = threading.Lock()
_busy: set[tuple[str, str]] = set()


def patch_iam_concurrent_modification() -> None:
    # See the module docstring.
    def guarded(name: str, role_arg: int) -> None:
        original = getattr(IAMBackend, name)

        def change(self: IAMBackend, *args: Any, **kwargs: Any) -> Any:
            role = kwargs.get("role_name", args[role_arg] if len(args) > role_arg else None)
            key = (self.account_id, str(role))
            with _busy_lock:
                if key in _busy:
                    raise ConcurrentModification()
                _busy.add(key)
            try:
                result = original(self, *args, **kwargs)
                time.sleep(lifecycle.delay("iam_mutation"))
                return result
            finally:
                with _busy_lock:
                    _busy.discard(key)

        setattr(IAMBackend, name, change)

    for name, role_arg in [
        ("put_role_policy", 0),
        ("attach_role_policy", 1),  # (policy_arn, role_name)
        ("detach_role_policy", 1),
        ("delete_role_policy", 0),
        ("update_assume_role_policy", 0),
        ("update_role", 0),
    ]:
        guarded(name, role_arg)
