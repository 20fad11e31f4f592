"""EC2 patches: idempotent NAT gateways and complete security group rules."""

import threading
import time
from typing import Any

from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.security_groups import SecurityGroupRule
from moto.ec2.responses.nat_gateways import NatGateways
from moto.ec2.responses.security_groups import SecurityGroups

from . import lifecycle


def patch_nat_gateway_client_token() -> None:
    # moto ignores ClientToken on CreateNatGateway, so a retried call makes a
    # second gateway (or fails with Resource.AlreadyAssociated on the EIP).
    original = NatGateways.create_nat_gateway

    def create_nat_gateway(self: NatGateways) -> ActionResult:
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        backend = self.ec2_backend
        tokens = backend.__dict__.setdefault("_emulator_nat_tokens", {})
        request = (self._get_param("SubnetId"), self._get_param("AllocationId"),
                   self._get_param("ConnectivityType") or "public")
        if token in tokens:
            nat_id, earlier = tokens[token]
            if earlier != request:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"Client token {token} was already used with different parameters.",
                )
            return ActionResult({"ClientToken": token, "NatGateway": backend.nat_gateways[nat_id]})
        result = original(self)
        nat = result.result["NatGateway"]
        tokens[token] = (nat.id, request)
        return ActionResult({"ClientToken": token, "NatGateway": nat})

    NatGateways.create_nat_gateway = create_nat_gateway


def patch_security_group_rules() -> None:
    # moto returns only the last IpPermission's rules from Authorize*, and loses
    # the Description of rules that reference a security group or prefix list.
    def collect(method: str) -> Any:
        def authorize(self: SecurityGroups) -> ActionResult:
            self.error_on_dryrun()
            rules: list[Any] = []
            for kwargs in self._process_rules_from_querystring():
                added, _ = getattr(self.ec2_backend, method)(**kwargs)
                rules.extend(added)
            return ActionResult({"Return": True, "SecurityGroupRules": rules})

        return authorize

    SecurityGroups.authorize_security_group_ingress = collect("authorize_security_group_ingress")
    SecurityGroups.authorize_security_group_egress = collect("authorize_security_group_egress")
    SecurityGroupRule.description = property(
        lambda self: self.ip_range.get("Description") or self.source_group.get("Description")
    )


def patch_nat_gateway_delete_frees_address() -> None:
    # moto's DeleteNatGateway only marks the gateway `deleted`: its Elastic IP stays
    # associated and its network interface stays in the subnet, so a replacement gateway
    # fails with Resource.AlreadyAssociated and the subnet cannot be deleted. AWS frees both.
    from moto.ec2.models.nat_gateways import NatGatewayBackend

    original = NatGatewayBackend.delete_nat_gateway

    def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
        nat = original(self, nat_gateway_id)
        eni = getattr(nat, "_eni", None)
        if eni is not None:
            for address in list(self.addresses):
                if address.eni is eni:
                    self.disassociate_address(address=address.public_ip)
            if eni.id in self.enis:
                self.delete_network_interface(eni.id)
            nat._eni = None
        return nat

    NatGatewayBackend.delete_nat_gateway = delete_nat_gateway


def patch_network_interfaces_block_deletion() -> None:
    # moto deletes a subnet or security group that network interfaces still use. AWS
    # answers DependencyViolation until they are gone (Lambda and pipe pollers leave such
    # interfaces behind for many minutes), which is what mskctl's destroy must wait out.
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.ec2.models.subnets import SubnetBackend

    delete_subnet = SubnetBackend.delete_subnet
    delete_security_group = SecurityGroupBackend.delete_security_group

    def subnet_in_use(self: Any, subnet_id: str) -> Any:
        if any(getattr(eni.subnet, "id", None) == subnet_id for eni in self.enis.values()):
            raise DependencyViolationError(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
        return delete_subnet(self, subnet_id)

    def group_in_use(self: Any, name: Any = None, group_id: Any = None) -> Any:
        if group_id and any(
            group_id in {getattr(g, "id", g) for g in eni.group_set} for eni in self.enis.values()
        ):
            raise DependencyViolationError(f"resource {group_id} has a dependent object")
        return delete_security_group(self, name=name, group_id=group_id)

    SubnetBackend.delete_subnet = subnet_in_use
    SecurityGroupBackend.delete_security_group = group_in_use



def patch_group_references_block_deletion() -> None:
    # moto deletes a security group that another group's rule still names as its peer. AWS
    # answers DependencyViolation ("resource sg-... has a dependent object") until every rule
    # of another group that references it (ingress or egress) is revoked; a group's rules
    # that reference the group itself do not block its own deletion.
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    delete_security_group = SecurityGroupBackend.delete_security_group

    def referenced(self: Any, group_id: str) -> bool:
        for groups in self.groups.values():
            for other in list(groups.values()):
                if other.id == group_id:
                    continue
                for rule in list(other.ingress_rules) + list(other.egress_rules):
                    if (rule.source_group or {}).get("GroupId") == group_id:
                        return True
        return False

    def group_referenced(self: Any, name: Any = None, group_id: Any = None) -> Any:
        if group_id is None and name is not None:
            group = self.get_security_group_by_name_or_id(name)
            group_id = group.id if group else None
            if group_id is not None:
                name = None
        if group_id and referenced(self, group_id):
            raise DependencyViolationError(f"resource {group_id} has a dependent object")
        return delete_security_group(self, name=name, group_id=group_id)

    SecurityGroupBackend.delete_security_group = group_referenced

# Id prefix -> (error code, message) AWS answers for an id it does not know (yet).
_NOT_FOUND = {
    "vpc-": ("InvalidVpcID.NotFound", "The vpc ID '{}' does not exist"),
    "subnet-": ("InvalidSubnetID.NotFound", "The subnet ID '{}' does not exist"),
    "sg-": ("InvalidGroup.NotFound", "The security group '{}' does not exist"),
    "igw-": ("InvalidInternetGatewayID.NotFound", "The internetGateway ID '{}' does not exist"),
    "rtb-": ("InvalidRouteTableID.NotFound", "The routeTable ID '{}' does not exist"),
    "eipalloc-": ("InvalidAllocationID.NotFound", "The allocation ID '{}' does not exist"),
    "nat-": ("NatGatewayNotFound", "The Nat Gateway {} was not found"),
}
_fresh: dict[str, float] = {}  # id -> time.monotonic() of its create
_fresh_lock = threading.Lock()


def _remember(resource_id: str | None) -> None:
    if resource_id:
        with _fresh_lock:
            _fresh[resource_id] = time.monotonic()


def _not_yet_visible(resource_id: str) -> bool:
    with _fresh_lock:
        born = _fresh.get(resource_id)
        if born is None:
            return False
        if time.monotonic() - born < lifecycle.delay("ec2_consistency"):
            return True
        del _fresh[resource_id]
        return False


def _ids_in_request(querystring: dict[str, Any]) -> list[str]:
    # Filters that name a fresh id just match nothing on AWS, and tag values are not ids.
    return [
        value
        for key, values in querystring.items()
        if not key.startswith(("Filter.", "TagSpecification."))
        for value in (values if isinstance(values, list) else [values])
        if isinstance(value, str) and value.startswith(tuple(_NOT_FOUND))
    ]


def patch_eventual_consistency() -> None:
    # AWS: "if you run a command to modify or describe the resource that you just created,
    # its ID might not have propagated throughout the system, and you will get an error
    # responding that the resource does not exist" (EC2 API, Eventual consistency). Moto
    # knows every id at once. For `ec2_consistency` seconds after its create, an id in any
    # request (describe by id, modify, attach, associate, CreateTags, a create that
    # references it) is answered with AWS's Invalid...ID.NotFound code. Deletes and
    # ReleaseAddress are left alone: mskctl treats their NotFound as "already gone".
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
    from moto.ec2.models.internet_gateways import InternetGatewayBackend
    from moto.ec2.models.nat_gateways import NatGatewayBackend
    from moto.ec2.models.route_tables import RouteBackend
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.ec2.models.subnets import SubnetBackend
    from moto.ec2.models.vpcs import VPCBackend

    def remembering(cls: Any, method: str, id_attr: str) -> None:
        original = getattr(cls, method)

        def create(self: Any, *args: Any, **kwargs: Any) -> Any:
            made = original(self, *args, **kwargs)
            _remember(getattr(made, id_attr, None))
            return made

        setattr(cls, method, create)

    remembering(VPCBackend, "create_vpc", "id")
    remembering(SubnetBackend, "create_subnet", "id")
    remembering(SecurityGroupBackend, "create_security_group", "id")
    remembering(InternetGatewayBackend, "create_internet_gateway", "id")
    remembering(RouteBackend, "create_route_table", "id")
    remembering(ElasticAddressBackend, "allocate_address", "allocation_id")
    remembering(NatGatewayBackend, "create_nat_gateway", "id")

    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        action = self._get_action() or ""
        if self.service_name != "ec2" or action.startswith("Delete") or action == "ReleaseAddress":
            return original(self)
        fresh = next((i for i in _ids_in_request(self.querystring) if _not_yet_visible(i)), None)
        if fresh is None:
            return original(self)
        code, message = next(v for k, v in _NOT_FOUND.items() if fresh.startswith(k))
        status, headers, body = self.serialized(ActionResult(EC2ClientError(code, message.format(fresh))))
        return status, headers, body

    BaseResponse.call_action = call_action
