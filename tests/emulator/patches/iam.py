"""IAM propagation: a role, or a policy newly put on or attached to it, takes a while to be usable.

IAM is eventually consistent ("changes ... can take time to become visible",
IAM User Guide, "Changes that I make are not always immediately visible").
Right after CreateRole, Lambda cannot assume the role yet; right after
PutRolePolicy/AttachRolePolicy, the services that check the role's permissions
do not see the new ones. Moto applies everything at once, so mskctl's retries
would never run. This module remembers when each role last changed; the
Lambda, event source mapping and Pipes patches ask it whether a role is usable
yet. The window is the `iam` delay (EMULATOR_IAM_PROPAGATION_SECONDS).
"""

import threading
import time
from typing import Any

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
