"""Lambda event source mappings from Kafka (Amazon MSK and self-managed).

moto 5.2.5 only maps SQS, Kinesis and DynamoDB streams: an MSK ARN is
"Invalid EventSourceArn" and SelfManagedEventSource is "Missing EventSourceArn".
`KafkaMapping` models the Kafka shape of EventSourceMappingConfiguration; it
lives in moto's own mapping table so tags (ESM ARN) keep working, and the
backend methods are wrapped to route Kafka mappings here.
"""

import time
import uuid
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend

from . import faults
from .lifecycle import Lifecycle

# UpdateEventSourceMapping has no such members: they are fixed at creation.
CREATE_ONLY = ("EventSourceArn", "SelfManagedEventSource", "Topics", "StartingPosition",
               "StartingPositionTimestamp", "Queues", "Tags")
# Update members stored as given (the ones with rules are handled explicitly).
UPDATABLE = ("DestinationConfig", "SourceAccessConfigurations", "FilterCriteria",
             "ScalingConfig", "ProvisionedPollerConfig", "MetricsConfig", "KMSKeyArn",
             "LoggingConfig", "BisectBatchOnFunctionError", "MaximumRecordAgeInSeconds",
             "MaximumRetryAttempts", "ParallelizationFactor", "TumblingWindowInSeconds",
             "FunctionResponseTypes")


def invalid(message: str) -> LambdaClientError:
    return LambdaClientError("InvalidParameterValueException", message)


def not_found(uuid_: str) -> LambdaClientError:
    error = LambdaClientError("ResourceNotFoundException", f"The resource you requested does not exist. (Service: Lambda, UUID: {uuid_})")
    error.code = 404
    return error


def is_kafka_spec(spec: dict[str, Any]) -> bool:
    arn = spec.get("EventSourceArn") or ""
    return bool(spec.get("SelfManagedEventSource")) or arn.split(":")[2:3] == ["kafka"]


class KafkaMapping:
    def __init__(self, backend: LambdaBackend, function_arn: str, spec: dict[str, Any]):
        self.uuid = str(uuid.uuid4())
        self.function_arn = function_arn
        self.function_name = spec["FunctionName"]  # moto's own filters read this
        self.event_source_arn = spec.get("EventSourceArn")
        self.self_managed = spec.get("SelfManagedEventSource")
        self.topics = list(spec["Topics"])
        self.starting_position = spec["StartingPosition"]
        self.starting_position_timestamp = spec.get("StartingPositionTimestamp")
        self.batch_size = spec.get("BatchSize", 100)
        self.max_batching_window = spec.get("MaximumBatchingWindowInSeconds")
        self.enabled = spec.get("Enabled", True)
        config_key = "SelfManagedKafkaEventSourceConfig" if self.self_managed else "AmazonManagedKafkaEventSourceConfig"
        self.kafka_config_key = config_key
        # Without a ConsumerGroupId, Lambda uses the mapping's UUID as the group.
        self.kafka_config = dict(spec.get(config_key) or {})
        self.kafka_config.setdefault("ConsumerGroupId", self.uuid)
        self.extra = {k: spec[k] for k in UPDATABLE if k in spec}
        self.tags = dict(spec.get("Tags") or {})
        self.arn = f"arn:aws:lambda:{backend.region_name}:{backend.account_id}:event-source-mapping:{self.uuid}"
        self.state_reason = "USER_INITIATED"
        self.last_result = "No records processed"
        self.last_modified = time.time()
        self.lifecycle = Lifecycle("Creating")
        self.lifecycle.begin("Creating", "esm", self._settled_state)

    def _settled_state(self) -> str:
        self.last_modified = time.time()
        fault = faults.esm_fault(self.function_arn, self.topics)
        if fault:
            self.state_reason = fault.get("stateTransitionReason", self.state_reason)
            self.last_result = fault.get("lastProcessingResult", self.last_result)
            return fault.get("state", "Disabled")
        self.state_reason = "USER_INITIATED"
        return "Enabled" if self.enabled else "Disabled"

    def source_key(self) -> tuple[str, str]:
        if self.event_source_arn:
            return ("arn", self.event_source_arn)
        servers = self.self_managed["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"]
        return ("servers", ",".join(sorted(servers)))

    def get_configuration(self) -> dict[str, Any]:
        config = {
            "UUID": self.uuid,
            "EventSourceMappingArn": self.arn,
            "FunctionArn": self.function_arn,
            "Topics": self.topics,
            "StartingPosition": self.starting_position,
            "StartingPositionTimestamp": self.starting_position_timestamp,
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.max_batching_window,
            "EventSourceArn": self.event_source_arn,
            "SelfManagedEventSource": self.self_managed,
            self.kafka_config_key: self.kafka_config,
            "State": self.lifecycle.current(),
            "StateTransitionReason": self.state_reason,
            "LastProcessingResult": self.last_result,
            "LastModified": self.last_modified,
            **self.extra,
        }
        return {k: v for k, v in config.items() if v is not None}

    def update(self, backend: LambdaBackend, spec: dict[str, Any]) -> None:
        if self.lifecycle.in_transition:
            raise LambdaClientError(
                "ResourceInUseException",
                f"Cannot update the event source mapping {self.uuid} while it is {self.lifecycle.current()}.",
            )
        sent = [k for k in CREATE_ONLY if k in spec]
        if sent:
            raise invalid(f"{', '.join(sent)} cannot be updated; delete and recreate the event source mapping.")
        new_group = (spec.get(self.kafka_config_key) or {}).get("ConsumerGroupId")
        if new_group and new_group != self.kafka_config["ConsumerGroupId"]:
            raise invalid("ConsumerGroupId cannot be updated after the event source mapping is created.")
        validate_numbers(spec)
        if "FunctionName" in spec:
            self.function_arn = backend.get_function(spec["FunctionName"]).function_arn
            self.function_name = spec["FunctionName"]
        self.batch_size = spec.get("BatchSize", self.batch_size)
        self.max_batching_window = spec.get("MaximumBatchingWindowInSeconds", self.max_batching_window)
        self.extra.update({k: spec[k] for k in UPDATABLE if k in spec})
        transition = "Updating"
        if "Enabled" in spec and spec["Enabled"] != self.enabled:
            transition = "Enabling" if spec["Enabled"] else "Disabling"
            self.enabled = spec["Enabled"]
        self.last_modified = time.time()
        self.lifecycle.begin(transition, "esm", self._settled_state)


def validate_numbers(spec: dict[str, Any]) -> None:
    size = spec.get("BatchSize")
    if size is not None and not 1 <= size <= 10000:
        raise invalid(f"BatchSize {size} is out of range: Kafka event sources allow 1 to 10000.")
    window = spec.get("MaximumBatchingWindowInSeconds")
    if window is not None and not 0 <= window <= 300:
        raise invalid(f"MaximumBatchingWindowInSeconds {window} is out of range: 0 to 300.")


def validate_create(spec: dict[str, Any]) -> None:
    if spec.get("EventSourceArn") and spec.get("SelfManagedEventSource"):
        raise invalid("Specify either EventSourceArn or SelfManagedEventSource, not both.")
    if spec.get("SelfManagedEventSource"):
        servers = (spec["SelfManagedEventSource"].get("Endpoints") or {}).get("KAFKA_BOOTSTRAP_SERVERS")
        if not servers:
            raise invalid("SelfManagedEventSource needs Endpoints.KAFKA_BOOTSTRAP_SERVERS.")
    if len(spec.get("Topics") or []) != 1:
        raise invalid("Kafka event sources need exactly one topic in Topics.")
    if spec.get("StartingPosition") not in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
        raise invalid("StartingPosition (TRIM_HORIZON, LATEST or AT_TIMESTAMP) is required for Kafka event sources.")
    validate_numbers(spec)


def check_role_propagated(role_arn: str, spec: dict[str, Any]) -> None:
    """While the function's role or its new policies have not propagated (iam.py), Lambda
    cannot check that the role may read the source. AWS's wording for streams is
    "Cannot access stream ARN. Please ensure the role can perform the GetRecords, ...
    Actions on your stream in IAM."; the same shape is used for the Kafka source."""
    from . import iam

    if iam.policies_are_new(role_arn):
        source = spec.get("EventSourceArn") or ",".join(
            (spec.get("SelfManagedEventSource") or {}).get("Endpoints", {}).get("KAFKA_BOOTSTRAP_SERVERS", []))
        raise invalid(
            f"Cannot access cluster {source}. Please ensure the role can perform the kafka:DescribeClusterV2, "
            "kafka:GetBootstrapBrokers, kafka-cluster:Connect and kafka-cluster:ReadData Actions on your cluster in IAM."
        )


def patch_kafka_event_source_mappings() -> None:
    # moto rejects MSK ARNs and SelfManagedEventSource; see the module docstring.
    create = LambdaBackend.create_event_source_mapping
    get = LambdaBackend.get_event_source_mapping
    update = LambdaBackend.update_event_source_mapping
    delete = LambdaBackend.delete_event_source_mapping
    listing = LambdaBackend.list_event_source_mappings
    by_arn = LambdaBackend._get_resource_by_arn

    def purge(backend: LambdaBackend) -> None:
        for esm in list(backend._event_source_mappings.values()):
            if isinstance(esm, KafkaMapping):
                esm.lifecycle.current()  # a finished delete removes it

    def create_event_source_mapping(self: LambdaBackend, spec: dict[str, Any]) -> Any:
        if not is_kafka_spec(spec):
            return create(self, spec)
        validate_create(spec)
        if not spec.get("FunctionName"):
            raise invalid("Missing FunctionName")
        function = self.get_function(spec["FunctionName"])
        check_role_propagated(function.role, spec)
        purge(self)
        mapping = KafkaMapping(self, function.function_arn, spec)
        for other in self._event_source_mappings.values():
            if (isinstance(other, KafkaMapping) and other.function_arn == mapping.function_arn
                    and other.source_key() == mapping.source_key() and other.topics == mapping.topics):
                error = LambdaClientError(
                    "ResourceConflictException",
                    f"An event source mapping with event source ({mapping.source_key()[1]}), function "
                    f"({function.function_arn}), topics ({', '.join(mapping.topics)}) already exists. "
                    f"Please update or delete the existing mapping with UUID {other.uuid}",
                )
                error.code = 409
                raise error
        self._event_source_mappings[mapping.uuid] = mapping
        return mapping

    def get_event_source_mapping(self: LambdaBackend, uuid_: str) -> Any:
        purge(self)
        return get(self, uuid_)

    def update_event_source_mapping(self: LambdaBackend, uuid_: str, spec: dict[str, Any]) -> Any:
        purge(self)
        esm = self._event_source_mappings.get(uuid_)
        if esm is None:
            raise not_found(uuid_)
        if not isinstance(esm, KafkaMapping):
            return update(self, uuid_, spec)
        esm.update(self, spec)
        return esm

    def delete_event_source_mapping(self: LambdaBackend, uuid_: str) -> Any:
        purge(self)
        esm = self._event_source_mappings.get(uuid_)
        if esm is None:
            raise not_found(uuid_)
        if not isinstance(esm, KafkaMapping):
            return delete(self, uuid_)

        def gone() -> str:
            self._event_source_mappings.pop(uuid_, None)
            return "Deleted"

        if esm.lifecycle.current() != "Deleting":
            esm.lifecycle.begin("Deleting", "esm", gone)
        return esm

    def list_event_source_mappings(self: LambdaBackend, event_source_arn: str, function_name: str) -> Any:
        # moto compares FunctionName with the name given at creation; AWS
        # accepts a name or an ARN, so compare resolved function ARNs instead.
        purge(self)
        mappings = listing(self, event_source_arn, None)
        if not function_name:
            return mappings
        try:
            function_arn = self.get_function(function_name).function_arn
        except LambdaClientError:
            return []
        return [m for m in mappings if m.function_arn == function_arn]

    def _get_resource_by_arn(self: LambdaBackend, arn: str) -> Any:
        purge(self)
        return by_arn(self, arn)

    LambdaBackend.create_event_source_mapping = create_event_source_mapping
    LambdaBackend.get_event_source_mapping = get_event_source_mapping
    LambdaBackend.update_event_source_mapping = update_event_source_mapping
    LambdaBackend.delete_event_source_mapping = delete_event_source_mapping
    LambdaBackend.list_event_source_mappings = list_event_source_mappings
    LambdaBackend._get_resource_by_arn = _get_resource_by_arn
