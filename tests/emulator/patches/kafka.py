"""MSK (kafka) patches: timestamps, ARNs, lifecycle, bootstrap brokers."""

import hashlib
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from moto.kafka.exceptions import KafkaException
from moto.kafka.models import FakeKafkaCluster, KafkaBackend
from moto.kafka.responses import KafkaResponse

from . import faults, kafka_broker
from .lifecycle import Lifecycle


class NotFoundException(KafkaException):
    code = 404  # moto's kafka NotFoundException answers 400

    def __init__(self, arn: str):
        super().__init__("NotFoundException", f"Cluster {arn} does not exist.")


def patch_creation_time_rfc3339() -> None:
    # moto writes creationTime without a UTC offset; aws-sdk-rust rejects it as
    # an invalid RFC 3339 date-time (ListClustersV2, DescribeClusterV2).
    original = FakeKafkaCluster.__init__

    def __init__(self: FakeKafkaCluster, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        now = datetime.now(timezone.utc)
        self.creation_time = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"

    FakeKafkaCluster.__init__ = __init__


def patch_cluster_arn_format() -> None:
    # moto's ARNs (".../serverless-cluster/UUID") lack the cluster name that AWS
    # puts in them (".../cluster/NAME/UUID-s1"), which IAM policies rely on.
    def _generate_arn(self: FakeKafkaCluster) -> str:
        suffix = "s1" if self.cluster_type == "SERVERLESS" else "1"
        return (
            f"arn:aws:kafka:{self.region_name}:{self.account_id}:"
            f"cluster/{self.cluster_name}/{self.cluster_id}-{suffix}"
        )

    FakeKafkaCluster._generate_arn = _generate_arn


def patch_cluster_lifecycle() -> None:
    # moto clusters stay CREATING forever and vanish at once on delete; AWS goes
    # CREATING -> ACTIVE (or FAILED) and DELETING -> gone, which mskctl waits on.
    original_init = FakeKafkaCluster.__init__

    def __init__(self: FakeKafkaCluster, *args: Any, **kwargs: Any) -> None:
        self._lifecycle = Lifecycle("CREATING")
        self.state_info: dict[str, str] | None = None
        original_init(self, *args, **kwargs)
        self._lifecycle.begin("CREATING", "msk_create", lambda: _finish_create(self))

    def _finish_create(cluster: FakeKafkaCluster) -> str:
        fault = faults.msk_fault(cluster.cluster_name)
        if fault:
            cluster.state_info = {
                "code": fault.get("code", "InternalError"),
                "message": fault.get("message", "Cluster creation failed."),
            }
            return "FAILED"
        return "ACTIVE"

    def state_get(self: FakeKafkaCluster) -> str:
        return self._lifecycle.current()

    def state_set(self: FakeKafkaCluster, value: str) -> None:
        self._lifecycle.set(value)

    FakeKafkaCluster.__init__ = __init__
    FakeKafkaCluster.state = property(state_get, state_set)

    def purge(backend: KafkaBackend) -> None:
        for cluster in list(backend.clusters.values()):
            cluster.state  # settles; a finished delete removes the cluster

    def delete_cluster(self: KafkaBackend, cluster_arn: str, current_version: str) -> tuple[str, str]:
        purge(self)
        cluster = self.clusters.get(cluster_arn)
        if cluster is None:
            raise NotFoundException(cluster_arn)

        def gone() -> str:
            self.clusters.pop(cluster_arn, None)
            self.tagger.delete_all_tags_for_resource(cluster_arn)
            return "DELETED"

        if cluster.state != "DELETING":
            cluster._lifecycle.begin("DELETING", "msk_delete", gone)
        return cluster_arn, cluster.state

    def describing(original: Any) -> Any:
        def describe(self: KafkaBackend, cluster_arn: str) -> dict[str, Any]:
            purge(self)
            if cluster_arn not in self.clusters:
                raise NotFoundException(cluster_arn)
            return _realistic_info(self.clusters[cluster_arn], original(self, cluster_arn))

        return describe

    def listing(original: Any) -> Any:
        def list_clusters(self: KafkaBackend, *args: Any, **kwargs: Any) -> Any:
            purge(self)
            infos = original(self, *args, **kwargs)
            return [_realistic_info(self.clusters[i["clusterArn"]], i) for i in infos]

        return list_clusters

    KafkaBackend.delete_cluster = delete_cluster
    KafkaBackend.describe_cluster_v2 = describing(KafkaBackend.describe_cluster_v2)
    KafkaBackend.describe_cluster = describing(KafkaBackend.describe_cluster)
    KafkaBackend.list_clusters_v2 = listing(KafkaBackend.list_clusters_v2)
    KafkaBackend.list_clusters = listing(KafkaBackend.list_clusters)


def _realistic_info(cluster: FakeKafkaCluster, info: dict[str, Any]) -> dict[str, Any]:
    # moto fills stateInfo and activeOperationArn with placeholders ("string",
    # "arn:aws:kafka:region:account-id:..."); AWS sends stateInfo only on failure.
    info.pop("activeOperationArn", None)
    info.pop("stateInfo", None)
    if cluster.state_info:
        info["stateInfo"] = dict(cluster.state_info)
    return info


def bootstrap_brokers(cluster: FakeKafkaCluster) -> dict[str, str]:
    """The broker strings AWS returns: the local broker's address (kafka_broker.py) in each
    string AWS would fill, so a client finds "the cluster"; with the broker off, names derived
    deterministically from the cluster id."""
    local = kafka_broker.address()
    if local:
        return {key: local for key in _fake_bootstrap_brokers(cluster)}
    return _fake_bootstrap_brokers(cluster)


def _fake_bootstrap_brokers(cluster: FakeKafkaCluster) -> dict[str, str]:
    region = cluster.region_name
    if cluster.cluster_type == "SERVERLESS":
        short = hashlib.sha256(cluster.cluster_id.encode()).hexdigest()[:8]
        return {
            "BootstrapBrokerStringSaslIam": f"boot-{short}.c2.kafka-serverless.{region}.amazonaws.com:9098"
        }
    short = hashlib.sha256(cluster.cluster_id.encode()).hexdigest()[:6]
    hosts = [
        f"b-{n}.{cluster.cluster_name}.{short}.c2.kafka.{region}.amazonaws.com"
        for n in range(1, (cluster.number_of_broker_nodes or 3) + 1)
    ]
    brokers = {"BootstrapBrokerStringTls": ",".join(f"{h}:9094" for h in hosts)}
    sasl = (cluster.client_authentication or {}).get("sasl", {})
    if sasl.get("iam", {}).get("enabled"):
        brokers["BootstrapBrokerStringSaslIam"] = ",".join(f"{h}:9098" for h in hosts)
    if sasl.get("scram", {}).get("enabled"):
        brokers["BootstrapBrokerStringSaslScram"] = ",".join(f"{h}:9096" for h in hosts)
    return brokers


def patch_get_bootstrap_brokers() -> None:
    # moto has no GetBootstrapBrokers handler and answers HTTP 500.
    def get_bootstrap_brokers(self: KafkaResponse) -> str:
        path = unquote(self.parsed_url.path)
        arn = path.split("/clusters/", 1)[-1].removesuffix("/bootstrap-brokers")
        backend = self.kafka_backend
        for cluster in list(backend.clusters.values()):
            cluster.state
        if arn not in backend.clusters:
            raise NotFoundException(arn)
        out = bootstrap_brokers(backend.clusters[arn])
        return json.dumps({k[0].lower() + k[1:]: v for k, v in out.items()})

    KafkaResponse.get_bootstrap_brokers = get_bootstrap_brokers
