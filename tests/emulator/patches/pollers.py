"""Network interfaces of Kafka pollers and of MSK Serverless clusters, lingering after their owner.

AWS places requester-managed network interfaces in the customer's subnets, with the customer's
security groups, for:
- a Lambda event source mapping from Amazon MSK: "Lambda creates a hyperplane ENI in the private
  subnet that contains your MSK cluster ... This hyperplane ENI uses the subnet and security group
  configuration of your MSK cluster, not your Lambda function" (Lambda Developer Guide, "Creating
  a Lambda event source mapping for an Amazon MSK event source");
- a Lambda event source mapping from self-managed Kafka: in the subnets and groups its
  `SourceAccessConfigurations` name (`VPC_SUBNET` `subnet:subnet-…`, `VPC_SECURITY_GROUP`
  `security_group:sg-…`);
- an EventBridge pipe polling an MSK cluster (Pipes needs "access to the Amazon VPC resources
  associated with your Amazon MSK cluster" and its role `ec2:CreateNetworkInterface`; EventBridge
  User Guide, "Amazon MSK topic as a source"), or a self-managed Kafka source with a `Vpc`;
- an MSK Serverless cluster itself, in the client subnets of its `VpcConfigs`.

Like Lambda's VPC interfaces (vpc.py) they are released in the background, long after their
owner is deleted or has moved to other subnets or groups, and until then DeleteSubnet and
DeleteSecurityGroup answer `DependencyViolation` (ec2.patch_network_interfaces_block_deletion).
Moto creates none of them. Here they are made when the owner is created (or its placement
changes) and linger `poller_eni_linger` after it is deleted (for a cluster: after it is gone),
through vpc.py's `_linger`/`_settle_all`.
"""

import uuid
from typing import Any

from . import lifecycle, vpc

DELAY = "poller_eni_linger"


def _subnet(backend: Any, subnet_id: str) -> Any:
    try:
        return backend.get_subnet(subnet_id)
    except Exception:
        return None  # AWS would refuse an unknown subnet; moto's callers may name made-up ones


def _place(backend: Any, subnets: list[str], groups: list[str], description: str, interface_type: str,
           requester_id: str) -> list[str]:
    """One in-use, requester-managed interface per known subnet, in `groups` (the VPC's default
    group when there are none, as AWS does)."""
    from moto.ec2.utils import random_private_ip

    made = []
    for subnet_id in subnets:
        subnet = _subnet(backend, subnet_id)
        if subnet is None:
            continue
        known = [g for g in groups if backend.get_security_group_from_id(g) is not None]
        if not known:
            known = [backend.get_default_security_group(subnet.vpc_id).id]
        eni = backend.create_network_interface(
            subnet, random_private_ip(subnet.cidr_block), group_ids=known,
            description=description.format(uuid=uuid.uuid4()),
        )
        eni.interface_type = interface_type
        eni.requester_managed = True
        eni.requester_id = requester_id
        eni.status = "in-use"
        made.append(eni.id)
    return made


def _release(owner: Any, after: float = 0.0) -> None:
    enis = owner.__dict__.pop("_emulator_poller_enis", None)
    backend = owner.__dict__.pop("_emulator_poller_ec2", None)
    if enis and backend is not None:
        vpc._linger(backend, enis, DELAY, after)


def _attach(owner: Any, backend: Any, placement: tuple[list[str], list[str]], description: str,
            interface_type: str, requester_id: str) -> None:
    owner._emulator_poller_placement = placement
    owner._emulator_poller_ec2 = backend
    owner._emulator_poller_enis = _place(backend, *placement, description, interface_type, requester_id)


def _replace(owner: Any, backend: Any, placement: tuple[list[str], list[str]], description: str,
             interface_type: str, requester_id: str) -> None:
    """A change of subnets or groups: new interfaces now, the old ones linger."""
    before = owner.__dict__.get("_emulator_poller_placement")
    if before is not None and _same(before, placement):
        return
    _release(owner)
    _attach(owner, backend, placement, description, interface_type, requester_id)


def _same(a: tuple[list[str], list[str]], b: tuple[list[str], list[str]]) -> bool:
    return (sorted(a[0]), sorted(a[1])) == (sorted(b[0]), sorted(b[1]))


# ---------------------------------------------------------------------------------------------
# Placements


def cluster_placement(cluster: Any) -> tuple[list[str], list[str]]:
    """Client subnets and security groups of an MSK cluster (serverless `vpcConfigs`, or a
    provisioned cluster's broker node group)."""
    subnets: list[str] = []
    groups: list[str] = []
    serverless = getattr(cluster, "serverless_config", None) or {}
    for config in serverless.get("vpcConfigs") or serverless.get("VpcConfigs") or []:
        subnets += config.get("subnetIds") or config.get("SubnetIds") or []
        groups += config.get("securityGroupIds") or config.get("SecurityGroupIds") or []
    nodes = getattr(cluster, "broker_node_group_info", None) or {}
    subnets += nodes.get("clientSubnets") or nodes.get("ClientSubnets") or []
    groups += nodes.get("securityGroups") or nodes.get("SecurityGroups") or []
    return list(dict.fromkeys(subnets)), list(dict.fromkeys(groups))


def _cluster(account_id: str, region: str, arn: str | None) -> Any:
    from moto.kafka.models import kafka_backends

    if not arn or ":kafka:" not in arn:
        return None
    return kafka_backends[account_id][region].clusters.get(arn)


def _msk_source_placement(account_id: str, region: str, arn: str | None) -> tuple[list[str], list[str]]:
    cluster = _cluster(account_id, region, arn)
    return cluster_placement(cluster) if cluster is not None else ([], [])


def access_placement(configs: list[dict[str, Any]] | None) -> tuple[list[str], list[str]]:
    """Subnets and groups of a self-managed Kafka mapping's SourceAccessConfigurations."""
    subnets, groups = [], []
    for config in configs or []:
        uri = config.get("URI") or ""
        if config.get("Type") == "VPC_SUBNET":
            subnets.append(uri.removeprefix("subnet:"))
        elif config.get("Type") == "VPC_SECURITY_GROUP":
            groups.append(uri.removeprefix("security_group:"))
    return subnets, groups


def _mapping_placement(mapping: Any, account_id: str, region: str) -> tuple[list[str], list[str]]:
    if mapping.event_source_arn:
        return _msk_source_placement(account_id, region, mapping.event_source_arn)
    return access_placement(mapping.extra.get("SourceAccessConfigurations"))


def _pipe_placement(pipe: Any) -> tuple[list[str], list[str]]:
    params = pipe.source_parameters or {}
    if "SelfManagedKafkaParameters" in params:
        network = params["SelfManagedKafkaParameters"].get("Vpc") or {}
        return list(network.get("Subnets") or []), list(network.get("SecurityGroup") or [])
    return _msk_source_placement(pipe.account_id, pipe.region_name, pipe.source)


# ---------------------------------------------------------------------------------------------
# Patches


def patch_msk_cluster_network_interfaces() -> None:
    from moto.kafka.models import KafkaBackend

    original_create = KafkaBackend.create_cluster_v2
    original_delete = KafkaBackend.delete_cluster

    def create_cluster_v2(self: KafkaBackend, *args: Any, **kwargs: Any) -> Any:
        made = original_create(self, *args, **kwargs)
        cluster = self.clusters.get(made[0])
        if cluster is not None:
            _attach(cluster, vpc._ec2(self.account_id, self.region_name), cluster_placement(cluster),
                    f"MSK Serverless ENI for cluster {cluster.cluster_name}-{{uuid}}", "interface",
                    "AROAEMULATORKAFKA:kafka")
        return made

    def delete_cluster(self: KafkaBackend, cluster_arn: str, current_version: str) -> Any:
        cluster = self.clusters.get(cluster_arn)
        result = original_delete(self, cluster_arn, current_version)
        if cluster is not None:
            _release(cluster, after=lifecycle.delay("msk_delete"))
        return result

    KafkaBackend.create_cluster_v2 = create_cluster_v2
    KafkaBackend.delete_cluster = delete_cluster


def patch_kafka_mapping_network_interfaces() -> None:
    from moto.awslambda.models import LambdaBackend

    from .lambda_esm import KafkaMapping

    original_create = LambdaBackend.create_event_source_mapping
    original_update = LambdaBackend.update_event_source_mapping
    original_delete = LambdaBackend.delete_event_source_mapping

    def place(self: LambdaBackend, mapping: Any) -> None:
        name = mapping.function_arn.rsplit(":", 1)[-1]
        _replace(mapping, vpc._ec2(self.account_id, self.region_name),
                 _mapping_placement(mapping, self.account_id, self.region_name),
                 f"AWS Lambda VPC ENI-{name}-{{uuid}}", "lambda", "AROAEMULATORLAMBDA:lambda")

    def create_event_source_mapping(self: LambdaBackend, spec: dict[str, Any]) -> Any:
        mapping = original_create(self, spec)
        if isinstance(mapping, KafkaMapping):
            place(self, mapping)
        return mapping

    def update_event_source_mapping(self: LambdaBackend, uuid_: str, spec: dict[str, Any]) -> Any:
        mapping = original_update(self, uuid_, spec)
        if isinstance(mapping, KafkaMapping) and "SourceAccessConfigurations" in spec:
            place(self, mapping)
        return mapping

    def delete_event_source_mapping(self: LambdaBackend, uuid_: str) -> Any:
        mapping = original_delete(self, uuid_)
        if isinstance(mapping, KafkaMapping):
            _release(mapping)
        return mapping

    LambdaBackend.create_event_source_mapping = create_event_source_mapping
    LambdaBackend.update_event_source_mapping = update_event_source_mapping
    LambdaBackend.delete_event_source_mapping = delete_event_source_mapping


def patch_pipe_network_interfaces() -> None:
    from moto.pipes.models import EventBridgePipesBackend

    original_create = EventBridgePipesBackend.create_pipe
    original_update = EventBridgePipesBackend.update_pipe
    original_delete = EventBridgePipesBackend.delete_pipe

    def place(self: EventBridgePipesBackend, pipe: Any) -> None:
        _replace(pipe, vpc._ec2(self.account_id, self.region_name), _pipe_placement(pipe),
                 f"AWS EventBridge Pipes ENI-{pipe.name}-{{uuid}}", "interface", "AROAEMULATORPIPES:pipes")

    def create_pipe(self: EventBridgePipesBackend, *args: Any, **kwargs: Any) -> Any:
        pipe = original_create(self, *args, **kwargs)
        place(self, pipe)
        return pipe

    def update_pipe(self: EventBridgePipesBackend, *args: Any, **kwargs: Any) -> Any:
        pipe = original_update(self, *args, **kwargs)
        place(self, pipe)  # only a self-managed source's Vpc can change; a same placement is kept
        return pipe

    def delete_pipe(self: EventBridgePipesBackend, *args: Any, **kwargs: Any) -> Any:
        pipe = original_delete(self, *args, **kwargs)
        _release(pipe)
        return pipe

    EventBridgePipesBackend.create_pipe = create_pipe
    EventBridgePipesBackend.update_pipe = update_pipe
    EventBridgePipesBackend.delete_pipe = delete_pipe
