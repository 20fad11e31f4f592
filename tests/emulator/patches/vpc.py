"""VPC patches: Lambda functions in a VPC (their Hyperplane network interfaces) and VPC endpoints.

Lambda: "When you connect a function to a VPC, Lambda creates an elastic network interface
for each combination of security group and subnet in your function's VPC configuration"
(Lambda Developer Guide, "Giving Lambda functions access to resources in an Amazon VPC").
The function stays `Pending` (or its update `InProgress`) until they are attached, which
takes minutes; the interfaces (Description `AWS Lambda VPC ENI-<function>-…`, InterfaceType
`lambda`, requester-managed) outlive the function's VPC configuration for a long while
(the Terraform AWS provider waits up to 45 minutes for them before deleting a subnet or a
security group), and while they exist the subnet and the group cannot be deleted
(`DependencyViolation`, see ec2.patch_network_interfaces_block_deletion). Moto has none of
this: VpcConfig is stored, `VpcId` is a placeholder, the function is `Active` at once.

VPC endpoints: moto creates them `available`, keeps deleted ones `deleted` forever, ignores
`PrivateDnsEnabled` on ModifyVpcEndpoint, never adds or removes the interfaces and routes a
modify implies, and crashes deleting a gateway endpoint created without `VpcEndpointType`
(AWS's default type is Gateway).

Transitions resolve lazily (patches/lifecycle.py): before every EC2 request the interfaces
whose lingering is over are removed and every endpoint's state is brought up to date, so a
DeleteSubnet right after the delay succeeds without anyone describing the endpoint first.
"""

import threading
import time
import uuid
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.core.responses import BaseResponse
from moto.ec2.exceptions import EC2ClientError

from . import lifecycle

PENDING_REASON = "The function is being created."
CREATE_ENI_DENIED = "The provided execution role does not have permissions to call CreateNetworkInterface on EC2"

_lock = threading.RLock()
# (ec2 backend, eni id, monotonic time the interface goes away)
_lingering: list[tuple[Any, str, float]] = []
_endpoints: list[Any] = []  # every VPCEndPoint, to settle them before each EC2 request


class FunctionBusy(LambdaClientError):
    code = 409

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


def _ec2(account_id: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id][region]


def _settle_all() -> None:
    now = time.monotonic()
    with _lock:
        keep = []
        for backend, eni_id, gone_at in _lingering:
            if now >= gone_at:
                backend.enis.pop(eni_id, None)
            else:
                keep.append((backend, eni_id, gone_at))
        _lingering[:] = keep
        endpoints = list(_endpoints)
    for endpoint in endpoints:
        _ = endpoint.state  # resolves a finished pending/deleting transition


def _linger(backend: Any, eni_ids: list[str], delay_name: str = "lambda_eni_linger", after: float = 0.0) -> None:
    """The interfaces stay (`available`) for the `delay_name` delay, counted `after` seconds
    from now (e.g. once their owner has finished deleting), then go at the next EC2 request."""
    gone_at = time.monotonic() + after + lifecycle.delay(delay_name)
    with _lock:
        for eni_id in eni_ids:
            eni = backend.enis.get(eni_id)
            if eni is not None:
                eni.status = "available"  # detached from the function, not yet deleted
                _lingering.append((backend, eni_id, gone_at))


# ---------------------------------------------------------------------------------------------
# Lambda functions in a VPC


def _vpc_parts(config: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    config = config or {}
    return list(config.get("SubnetIds") or []), list(config.get("SecurityGroupIds") or [])


def _check_vpc_config(backend: Any, config: dict[str, Any] | None) -> None:
    """What Lambda answers for a VPC configuration naming unknown subnets or groups."""
    from moto.awslambda.exceptions import InvalidParameterValueException

    subnets, groups = _vpc_parts(config)
    if subnets and not groups or groups and not subnets:
        raise InvalidParameterValueException(
            "SubnetIds and SecurityGroupIds must both be provided (or both be empty) in VpcConfig."
        )
    for subnet_id in subnets:
        if not any(subnet_id in zone for zone in backend.subnets.values()):
            raise InvalidParameterValueException(
                "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. "
                f"EC2 Error Message: The subnet ID '{subnet_id}' does not exist"
            )
    for group_id in groups:
        if backend.get_security_group_from_id(group_id) is None:
            raise InvalidParameterValueException(
                "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. "
                f"EC2 Error Message: The security group '{group_id}' does not exist"
            )


def _attach(fn: Any, backend: Any) -> None:
    """One Lambda-managed interface per subnet, in the function's groups."""
    from moto.ec2.utils import random_private_ip

    subnets, groups = _vpc_parts(fn._vpc_config)
    enis = []
    for subnet_id in subnets:
        subnet = backend.get_subnet(subnet_id)
        eni = backend.create_network_interface(
            subnet,
            random_private_ip(subnet.cidr_block),
            group_ids=groups,
            description=f"AWS Lambda VPC ENI-{fn.function_name}-{uuid.uuid4()}",
        )
        eni.interface_type = "lambda"
        eni.requester_managed = True
        eni.requester_id = "AROAEMULATORLAMBDA:lambda"
        eni.status = "in-use"
        enis.append(eni.id)
    fn._emulator_enis = enis


def _busy_until(fn: Any) -> str | None:
    """`Pending` or `InProgress` while the interfaces are being attached, else None."""
    since, what = getattr(fn, "_emulator_vpc_since", (None, None))
    if since is None:
        return None
    if time.monotonic() - since < lifecycle.delay("lambda_vpc"):
        return what
    fn._emulator_vpc_since = (None, None)
    return None


def patch_lambda_vpc_network_interfaces() -> None:
    from moto.awslambda.models import LambdaBackend, LambdaFunction

    from . import iam

    original_create = LambdaBackend.create_function
    original_update = LambdaBackend.update_function_configuration
    original_code = LambdaBackend.update_function_code
    original_delete = LambdaBackend.delete_function
    original_get = LambdaFunction.get_configuration

    def vpc_id_of(fn: Any) -> str:
        subnets, _ = _vpc_parts(fn._vpc_config)
        if not subnets:
            return ""
        return _ec2(fn.account_id, fn.region).get_subnet(subnets[0]).vpc_id

    def get_configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config = original_get(self, on_create)
        if self._vpc_config is not None:
            subnets, groups = _vpc_parts(self._vpc_config)
            config["VpcConfig"] = {"SubnetIds": subnets, "SecurityGroupIds": groups, "VpcId": vpc_id_of(self)}
        busy = _busy_until(self)
        if busy == "Pending":
            config.update(State="Pending", StateReason=PENDING_REASON, StateReasonCode="Creating")
            config.pop("LastUpdateStatus", None)
        elif busy == "InProgress":
            config.update(
                LastUpdateStatus="InProgress",
                LastUpdateStatusReason=PENDING_REASON,
                LastUpdateStatusReasonCode="Creating",
            )
        return config

    def refuse_while_busy(fn: Any) -> None:
        busy = _busy_until(fn)
        if busy == "Pending":
            raise FunctionBusy(
                "The operation cannot be performed at this time. The function is currently in the following state: Pending"
            )
        if busy == "InProgress":
            raise FunctionBusy(
                f"The operation cannot be performed at this time. An update is in progress for resource: {fn.function_arn}"
            )

    def check_role(role_arn: str, config: dict[str, Any] | None) -> None:
        # The ENI permissions (AWSLambdaVPCAccessExecutionRole) attached moments ago are not
        # visible to Lambda yet: the same propagation window as iam.py models.
        if _vpc_parts(config)[0] and iam.policies_are_new(role_arn):
            from moto.awslambda.exceptions import InvalidParameterValueException

            raise InvalidParameterValueException(CREATE_ENI_DENIED)

    def create_function(self: LambdaBackend, spec: dict[str, Any]) -> Any:
        config = spec.get("VpcConfig")
        if _vpc_parts(config)[0] or _vpc_parts(config)[1]:
            backend = _ec2(self.account_id, self.region_name)
            _check_vpc_config(backend, config)
            check_role(spec.get("Role", ""), config)
        fn = original_create(self, spec)
        if _vpc_parts(fn._vpc_config)[0]:
            _attach(fn, _ec2(self.account_id, self.region_name))
            fn._emulator_vpc_since = (time.monotonic(), "Pending")
        return fn

    def update_function_configuration(self: LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
        fn = self.get_function(function_name, qualifier)
        refuse_while_busy(fn)
        if "VpcConfig" not in body:
            return original_update(self, function_name, qualifier, body)
        backend = _ec2(self.account_id, self.region_name)
        _check_vpc_config(backend, body["VpcConfig"])
        check_role(body.get("Role") or fn.role, body["VpcConfig"])
        before = _vpc_parts(fn._vpc_config)
        after = _vpc_parts(body["VpcConfig"])
        result = original_update(self, function_name, qualifier, body)
        if (sorted(before[0]), sorted(before[1])) != (sorted(after[0]), sorted(after[1])):
            _linger(backend, getattr(fn, "_emulator_enis", []))
            fn._emulator_enis = []
            if after[0]:
                _attach(fn, backend)
                fn._emulator_vpc_since = (time.monotonic(), "InProgress")
            result = fn.get_configuration()
        return result

    def update_function_code(self: LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
        refuse_while_busy(self.get_function(function_name, qualifier))
        return original_code(self, function_name, qualifier, body)

    def delete_function(self: LambdaBackend, function_name: str, qualifier: str | None = None) -> None:
        try:
            fn = self.get_function(function_name, qualifier)
        except Exception:
            fn = None
        original_delete(self, function_name, qualifier)
        if fn is not None and not qualifier:
            _linger(_ec2(self.account_id, self.region_name), getattr(fn, "_emulator_enis", []))
            fn._emulator_enis = []

    LambdaFunction.get_configuration = get_configuration
    LambdaBackend.create_function = create_function
    LambdaBackend.update_function_configuration = update_function_configuration
    LambdaBackend.update_function_code = update_function_code
    LambdaBackend.delete_function = delete_function
    _settle_before_ec2_requests()


# ---------------------------------------------------------------------------------------------
# VPC endpoints


def _endpoint_enis(endpoint: Any, backend: Any, subnet_ids: list[str]) -> list[str]:
    from moto.ec2.utils import random_private_ip

    made = []
    groups = endpoint.security_group_ids or [backend.get_default_security_group(endpoint.vpc_id).id]
    for subnet_id in subnet_ids:
        subnet = backend.get_subnet(subnet_id)
        eni = backend.create_network_interface(
            subnet,
            random_private_ip(subnet.cidr_block),
            group_ids=groups,
            description=f"VPC Endpoint Interface {endpoint.id}",
        )
        eni.interface_type = "vpc_endpoint"
        eni.requester_managed = True
        eni.requester_id = "727180483921"
        eni.status = "in-use"
        eni._emulator_subnet = subnet_id
        made.append(eni.id)
    return made


def _lifecycle_state() -> property:
    """A `state` attribute read from the object's `_emulator_lc` Lifecycle once it has one
    (moto's constructor sets `state` before the patch attaches it)."""

    def state_get(self: Any) -> str:
        lc = self.__dict__.get("_emulator_lc")
        return lc.current() if lc is not None else self.__dict__.get("_emulator_state", "available")

    def state_set(self: Any, value: str) -> None:
        lc = self.__dict__.get("_emulator_lc")
        if lc is None:
            self.__dict__["_emulator_state"] = value
        else:
            lc.set(value)

    return property(state_get, state_set)


def patch_vpc_endpoint_lifecycle() -> None:
    from moto.ec2.models.vpcs import VPCBackend, VPCEndPoint
    from moto.ec2.responses.vpcs import VPCs

    original_init = VPCEndPoint.__init__
    original_create = VPCBackend.create_vpc_endpoint
    original_delete = VPCBackend.delete_vpc_endpoints
    original_modify = VPCEndPoint.modify

    VPCEndPoint.state = _lifecycle_state()

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # AWS's default type is Gateway; moto leaves it None and then crashes deleting it.
        self.vpc_endpoint_type = (self.vpc_endpoint_type or "Gateway").capitalize()
        self._emulator_lc = lifecycle.Lifecycle("pending")
        self._emulator_lc.begin("pending", "vpc_endpoint", lambda: "available")
        with _lock:
            _endpoints.append(self)

    def require_dns(backend: Any, vpc_id: str) -> None:
        # AWS: private DNS of an interface endpoint needs both DNS attributes of the VPC.
        vpc = backend.get_vpc(vpc_id)
        if not all(str(getattr(vpc, a, False)).lower() == "true" for a in ("enable_dns_support", "enable_dns_hostnames")):
            raise EC2ClientError(
                "InvalidParameter",
                "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes "
                f"set to true for {vpc_id}",
            )

    def create_vpc_endpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        endpoint_type = kwargs.get("endpoint_type")
        kwargs["endpoint_type"] = (endpoint_type or "Gateway").capitalize()
        if kwargs["endpoint_type"] == "Interface" and kwargs.get("private_dns_enabled") is not False:
            require_dns(self, kwargs.get("vpc_id") or args[0])
        endpoint = original_create(self, *args, **kwargs)
        if endpoint.vpc_endpoint_type == "Interface":
            # moto's interfaces are plain ones in the default group; AWS's are requester-managed
            # and use the endpoint's groups.
            for eni_id in endpoint.network_interface_ids:
                self.enis.pop(eni_id, None)
            endpoint.network_interface_ids = _endpoint_enis(endpoint, self, endpoint.subnet_ids or [])
        return endpoint

    def delete_vpc_endpoints(self: Any, vpce_ids: list[str] | None = None) -> None:
        for vpce_id in vpce_ids or []:
            endpoint = self.vpc_end_points.get(vpce_id)
            if endpoint is None or endpoint.state in ("deleting", "deleted"):
                continue

            def finish(backend: Any = self, vpce_id: str = vpce_id) -> str:
                original_delete(backend, vpce_ids=[vpce_id])
                return "deleted"

            endpoint._emulator_lc.begin("deleting", "vpc_endpoint", finish)

    def modify(self: Any, policy_doc: Any, add_subnets: Any, remove_subnets: Any, add_route_tables: Any,
               remove_route_tables: Any, add_security_groups: Any, remove_security_groups: Any) -> None:
        backend = self.ec2_backend
        before_tables = list(self.route_table_ids or [])
        original_modify(self, policy_doc, add_subnets, remove_subnets, add_route_tables, remove_route_tables,
                        add_security_groups, remove_security_groups)
        if self.vpc_endpoint_type == "Gateway" and self.destination_prefix_list_id:
            for table in add_route_tables or []:
                if table not in before_tables:
                    backend.create_route(table, None, gateway_id=self.id,
                                         destination_prefix_list_id=self.destination_prefix_list_id)
            for table in remove_route_tables or []:
                if table in before_tables:
                    backend.delete_route(table, self.destination_prefix_list_id)
        if self.vpc_endpoint_type != "Interface":
            return
        keep = []
        for eni_id in self.network_interface_ids:
            eni = backend.enis.get(eni_id)
            if eni is None or getattr(eni, "_emulator_subnet", None) in (remove_subnets or []):
                backend.enis.pop(eni_id, None)
            else:
                keep.append(eni_id)
        have = {getattr(backend.enis[e], "_emulator_subnet", None) for e in keep}
        keep += _endpoint_enis(self, backend, [s for s in add_subnets or [] if s not in have])
        self.network_interface_ids = keep
        if add_security_groups or remove_security_groups:
            groups = [backend.get_security_group_from_id(g) for g in self.security_group_ids]
            for eni_id in keep:
                backend.enis[eni_id]._group_set = [g for g in groups if g is not None]
        if add_subnets or remove_subnets:
            # AWS provisions the new interfaces before the endpoint is available again.
            self._emulator_lc.begin("pending", "vpc_endpoint", lambda: "available")

    original_response = VPCs.modify_vpc_endpoint

    def modify_vpc_endpoint(self: VPCs) -> Any:
        endpoint_id = self._get_param("VpcEndpointId")
        private_dns = self._get_param("PrivateDnsEnabled")
        enable = private_dns is not None and str(private_dns).lower() == "true"
        if enable:
            endpoint = self.ec2_backend.describe_vpc_endpoints(vpc_end_point_ids=[endpoint_id])[0]
            require_dns(self.ec2_backend, endpoint.vpc_id)
        result = original_response(self)
        if private_dns is not None:
            endpoint = self.ec2_backend.describe_vpc_endpoints(vpc_end_point_ids=[endpoint_id])[0]
            endpoint.private_dns_enabled = enable
        return result

    VPCEndPoint.__init__ = __init__
    VPCEndPoint.modify = modify
    VPCBackend.create_vpc_endpoint = create_vpc_endpoint
    VPCBackend.delete_vpc_endpoints = delete_vpc_endpoints
    VPCs.modify_vpc_endpoint = modify_vpc_endpoint
    _settle_before_ec2_requests()



def patch_nat_gateway_lifecycle() -> None:
    # moto's NAT gateway is `available` the moment CreateNatGateway answers and `deleted` (its
    # address and interface freed by ec2.patch_nat_gateway_delete_frees_address) the moment
    # DeleteNatGateway does. AWS ("NAT gateway basics", Amazon VPC User Guide): `pending` until
    # it can route, `deleting` after the delete until `deleted`, its Elastic IP and network
    # interface in use until then, so the address cannot be released nor the subnet deleted.
    # Both transitions take `EMULATOR_NAT_GATEWAY_SECONDS` (AWS: a few minutes, about one).
    # Apply after ec2.patch_nat_gateway_delete_frees_address: the delete it wraps frees them.
    from moto.ec2.models.nat_gateways import NatGateway, NatGatewayBackend

    original_init = NatGateway.__init__
    inner_delete = NatGatewayBackend.delete_nat_gateway

    NatGateway.state = _lifecycle_state()

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._emulator_lc = lifecycle.Lifecycle("pending")
        self._emulator_lc.begin("pending", "nat_gateway", lambda: "available")
        with _lock:
            _endpoints.append(self)  # settled before each EC2 request, like the endpoints

    def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
        nat = self.nat_gateways.get(nat_gateway_id)
        if nat is None:
            raise EC2ClientError("NatGatewayNotFound", f"The Nat Gateway {nat_gateway_id} was not found")
        if nat.state in ("deleting", "deleted"):
            return nat

        def finish(backend: Any = self, nat_id: str = nat_gateway_id) -> str:
            inner_delete(backend, nat_id)
            return "deleted"

        nat._emulator_lc.begin("deleting", "nat_gateway", finish)
        return nat

    NatGateway.__init__ = __init__
    NatGatewayBackend.delete_nat_gateway = delete_nat_gateway
    _settle_before_ec2_requests()

_hooked = False


def _settle_before_ec2_requests() -> None:
    global _hooked
    if _hooked:
        return
    _hooked = True
    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        if self.service_name == "ec2":
            _settle_all()
        return original(self)

    BaseResponse.call_action = call_action
