"""Topic-admin function: describes, ensures and deletes one Kafka topic for mskctl.

mskctl's ``kafka_topic`` kind cannot reach MSK brokers (they live inside the VPC), so it invokes
this function, deployed in the cluster's subnets, with a JSON payload:

    {"action": "describe" | "ensure" | "delete", "bootstrap_servers": "h1:9098,h2:9098",
     "security": "iam" | "scram" | "plaintext", "secret_arn": "<scram only>",
     "topic": "orders", "partitions": 3, "configs": {"retention.ms": "86400000"}}

and gets back ``{"exists": false}``, ``{"exists": true, "partitions": N, "configs": {...}}`` (plus
``"changed"`` for ensure) or ``{"error": {"code": ..., "message": ...}}``. Kafka-level failures are
answers, not exceptions: the handler raises only on its own bugs. See README.md for the contract.

The decisions (what ensure must do given the topic as it is, which configs count as set on the
topic, which error name to answer) are pure functions over plain data; ``Topics`` is the only
part that talks to Kafka.
"""

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field

import kafka.errors as Errors
from kafka import KafkaAdminClient
from kafka.net.compat import KafkaNetClient
from kafka.protocol.admin import DescribeConfigsRequest, IncrementalAlterConfigsRequest

logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
# kafka-python logs its whole configuration at DEBUG, SASL password included: its loggers never
# go below WARNING, whatever level the runtime gives the root logger.
logging.getLogger("kafka").setLevel(logging.WARNING)

ACTIONS = ("describe", "ensure", "delete")
SECURITIES = ("iam", "scram", "plaintext")

# Kafka's DescribeConfigs config sources (KIP-226).
DYNAMIC_TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5
TOPIC_RESOURCE = 2
OP_SET, OP_DELETE = 0, 1

# Topic configs that a Kafka broker lists in every full DescribeConfigs of a topic, set or not
# (MSK Serverless lets users set each of them, so it describes them too).
ALWAYS_DESCRIBED = ("cleanup.policy", "compression.type", "max.message.bytes", "retention.bytes", "retention.ms")

# Kafka's own rule for topic names (kafka.common.internals.Topic).
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")

DEFAULT_TIMEOUT_MS = 20000  # one invocation's Kafka work, when the function's env does not say
MARGIN_MS = 2000  # left to the invocation to answer after the Kafka work gave up
SETTLE_SECONDS = 10  # how long a change may take to show in the brokers' metadata


class Failure(Exception):
    """A Kafka-level or request-level failure, answered as {"error": {"code", "message"}}."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def reply(self):
        return {"error": {"code": self.code, "message": self.message}}


# ---------------------------------------------------------------------------------------------
# Pure parts: requests, connection settings, error names, configs, the ensure decision.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    action: str
    bootstrap_servers: str
    security: str
    topic: str
    secret_arn: str = None
    partitions: int = None
    configs: dict = field(default_factory=dict)


def parse_request(event):
    """Validate the invoke payload; raises Failure(InvalidRequest | InvalidTopic)."""
    if not isinstance(event, dict):
        raise Failure("InvalidRequest", f"the payload must be a JSON object, got {type(event).__name__}")
    action = event.get("action")
    if action not in ACTIONS:
        raise Failure("InvalidRequest", f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    bootstrap = event.get("bootstrap_servers")
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        raise Failure("InvalidRequest", "bootstrap_servers must be a non-empty 'host:port,host:port' string")
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise Failure("InvalidRequest", f"bootstrap server {server.strip()!r} is not host:port")
    security = event.get("security", "iam")
    if security not in SECURITIES:
        raise Failure("InvalidRequest", f"security must be one of {', '.join(SECURITIES)}, got {security!r}")
    secret_arn = event.get("secret_arn")
    if security == "scram" and (not isinstance(secret_arn, str) or not secret_arn):
        raise Failure("InvalidRequest", "security scram needs secret_arn (a Secrets Manager secret {username, password})")
    topic = event.get("topic")
    if not isinstance(topic, str) or not topic:
        raise Failure("InvalidRequest", "topic must be a non-empty string")
    if not TOPIC_NAME.match(topic) or topic in (".", ".."):
        raise Failure(
            "InvalidTopic",
            f"topic name {topic!r} is not legal in Kafka: use 1 to 249 of a-z A-Z 0-9 . _ - (and not '.' or '..')",
        )
    partitions, configs = None, {}
    if action == "ensure":
        partitions = event.get("partitions")
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise Failure("InvalidRequest", f"ensure needs partitions, an integer of at least 1, got {partitions!r}")
        configs = normalise_configs(event.get("configs") or {})
    return Request(action, bootstrap.strip(), security, topic, secret_arn, partitions, configs)


def normalise_configs(configs):
    """Topic configs as Kafka strings: numbers and booleans are accepted and written as Kafka writes them."""
    if not isinstance(configs, dict):
        raise Failure("InvalidRequest", f"configs must be an object of name to value, got {type(configs).__name__}")
    out = {}
    for name, value in configs.items():
        if not isinstance(name, str) or not name:
            raise Failure("InvalidRequest", f"config names must be non-empty strings, got {name!r}")
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, (int, str)):
            out[name] = str(value)
        else:
            raise Failure("InvalidRequest", f"config {name} must be a string or a number, got {value!r}")
    return out


def connection_settings(security, environ, fetch_secret=None, secret_arn=None):
    """kafka-python security settings for a request's "security" (pure; fetch_secret reads SCRAM credentials).

    KAFKA_SECURITY_OVERRIDE=plaintext (set only by mskctl's local emulator, whose broker has no
    authentication) connects PLAINTEXT whatever the request says.
    """
    override = environ.get("KAFKA_SECURITY_OVERRIDE", "")
    if override not in ("", "plaintext"):
        raise Failure("InvalidRequest", f"KAFKA_SECURITY_OVERRIDE may only be 'plaintext' (or unset), got {override!r}")
    if override == "plaintext" or security == "plaintext":
        return {"security_protocol": "PLAINTEXT"}
    if security == "iam":
        # AWS_MSK_IAM signs with the function's role credentials through botocore (in the runtime).
        return {"security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM"}
    username, password = fetch_secret(secret_arn)
    return {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }


def error_code(error):
    """Kafka's name for an error (class, instance or numeric code): TOPIC_ALREADY_EXISTS -> TopicAlreadyExists."""
    if isinstance(error, int):
        error = Errors.for_code(error)
    if isinstance(error, Errors.IncompatibleBrokerVersion) or error is Errors.IncompatibleBrokerVersion:
        return "UnsupportedVersion"
    name = getattr(error, "message", None)
    if isinstance(name, str) and re.fullmatch(r"[A-Z_]+", name):
        return name.title().replace("_", "")
    cls = error if isinstance(error, type) else type(error)
    return cls.__name__.removesuffix("Error")


# The MSK IAM action each Kafka request needs on the topic (MSK developer guide, "Semantics of
# IAM authorization policy actions and resources"), named when the broker refuses one.
IAM_ACTIONS = {
    "Metadata": "kafka-cluster:DescribeTopic",
    "CreateTopics": "kafka-cluster:CreateTopic",
    "CreatePartitions": "kafka-cluster:AlterTopic",
    "DescribeConfigs": "kafka-cluster:DescribeTopicDynamicConfiguration",
    "IncrementalAlterConfigs": "kafka-cluster:AlterTopicDynamicConfiguration",
    "DeleteTopics": "kafka-cluster:DeleteTopic",
}


def kafka_failure(code, broker_message, what):
    """Failure for a Kafka error code answered to `what` (e.g. "CreateTopics orders")."""
    error = Errors.for_code(code)
    detail = broker_message or getattr(error, "description", "") or error.__name__
    message = f"{what}: {detail}"
    if error is Errors.TopicAuthorizationFailedError:
        action = IAM_ACTIONS.get(what.split(" ", 1)[0])
        if action:
            message += f" (with MSK IAM the function's role needs {action} on the topic)"
    return Failure(error_code(error), message)


def configs_set_on_topic(entries):
    """The configs set on the topic itself, from a full DescribeConfigs: [(name, value, source)].

    Kafka marks them DYNAMIC_TOPIC_CONFIG and lists every other topic config with its default's
    source. A broker that lists only the configs given to the topic and marks them all
    DEFAULT_CONFIG (Tansu 0.6, mskctl's local broker) is recognised by that shape: no entry from
    the topic or the broker, and some of the always-described configs missing.
    """
    entries = list(entries)
    own = {name: value for name, value, source in entries if source == DYNAMIC_TOPIC_CONFIG}
    names = {name for name, _, _ in entries}
    lists_every_config = all(name in names for name in ALWAYS_DESCRIBED)
    only_defaults = all(source == DEFAULT_CONFIG for _, _, source in entries)
    if own or lists_every_config or not only_defaults:
        return own
    return {name: value for name, value, _ in entries if value is not None}


@dataclass(frozen=True)
class TopicState:
    partitions: int
    configs: dict


@dataclass(frozen=True)
class EnsurePlan:
    """What ensure changes: create the topic, or raise its partitions / set and reset configs."""

    create: bool = False
    partitions: int = None  # the total to create with, or to raise to
    set_configs: dict = field(default_factory=dict)
    reset_configs: tuple = ()

    def changed(self):
        if self.create:
            return ["created"]
        changed = ["partitions"] if self.partitions is not None else []
        return changed + [f"configs:{name}" for name in sorted({*self.set_configs, *self.reset_configs})]


def plan_ensure(topic, current, partitions, configs):
    """Decide what ensure does given the topic as it is (None when missing) and as it should be."""
    if current is None:
        return EnsurePlan(create=True, partitions=partitions, set_configs=dict(configs))
    if partitions < current.partitions:
        raise Failure(
            "InvalidPartitions",
            f"topic {topic} has {current.partitions} partitions and Kafka cannot lower a topic's partition "
            f"count to {partitions}; keep {current.partitions} or more, or delete and recreate the topic "
            "(which deletes its records)",
        )
    set_configs = {name: value for name, value in configs.items() if current.configs.get(name) != value}
    reset = tuple(sorted(name for name in current.configs if name not in configs))
    raise_to = partitions if partitions > current.partitions else None
    return EnsurePlan(create=False, partitions=raise_to, set_configs=set_configs, reset_configs=reset)


def state_reply(state, changed=None):
    if state is None:
        return {"exists": False}
    reply = {"exists": True, "partitions": state.partitions, "configs": dict(sorted(state.configs.items()))}
    if changed is not None:
        reply["changed"] = changed
    return reply


def budget_ms(environ, remaining_ms):
    """Time for this invocation's Kafka work: KAFKA_TIMEOUT_MS (default 20 s), cut to the invocation's time."""
    raw = environ.get("KAFKA_TIMEOUT_MS", "")
    budget = int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_TIMEOUT_MS
    if remaining_ms is not None:
        budget = min(budget, remaining_ms - MARGIN_MS)
    return max(budget, 1000)


# ---------------------------------------------------------------------------------------------
# Kafka side.
# ---------------------------------------------------------------------------------------------


class Deadline:
    def __init__(self, seconds):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self):
        return max(0.0, self.at - time.monotonic())

    def passed(self):
        return self.remaining() <= 0

    def sleep(self, seconds):
        time.sleep(min(seconds, self.remaining()))


class Topics:
    """One topic-admin connection. Uses kafka-python's admin client, and its connection manager for
    DescribeConfigs and IncrementalAlterConfigs, whose per-topic error codes the high-level calls drop
    (kafka-python is pinned to 3.0.12 in requirements.txt)."""

    def __init__(self, admin, request_timeout_ms):
        self.admin = admin
        self.timeout_ms = request_timeout_ms

    def _send(self, request):
        manager = self.admin._manager
        return manager.run(manager.send, request)

    def describe(self, topic, deadline):
        """TopicState, or None when the topic does not exist."""
        while True:
            [meta] = self.admin.describe_topics([topic])
            error = Errors.for_code(meta["error_code"])
            if error is Errors.UnknownTopicOrPartitionError:
                return None
            if error is Errors.NoError:
                break
            if not error.retriable or deadline.passed():
                raise kafka_failure(meta["error_code"], None, f"Metadata {topic}")
            deadline.sleep(0.5)  # e.g. LeaderNotAvailable while the topic is being created
        configs = self.describe_configs(topic)
        if configs is None:
            return None
        return TopicState(partitions=len(meta["partitions"]), configs=configs)

    def describe_configs(self, topic):
        response = self._send(DescribeConfigsRequest(resources=[(TOPIC_RESOURCE, topic, None)], include_synonyms=False))
        [result] = response.results
        if result.error_code == Errors.UnknownTopicOrPartitionError.errno:
            return None
        if result.error_code:
            raise kafka_failure(result.error_code, result.error_message, f"DescribeConfigs {topic}")
        return configs_set_on_topic((c.name, c.value, c.config_source) for c in result.configs)

    def create(self, topic, partitions, configs):
        spec = {"num_partitions": partitions, "replication_factor": -1, "configs": configs}
        result = self.admin.create_topics({topic: spec}, timeout_ms=self.timeout_ms, raise_errors=False)
        [answer] = result["topics"]
        if answer["error_code"]:
            raise kafka_failure(answer["error_code"], answer.get("error_message"), f"CreateTopics {topic}")

    def raise_partitions(self, topic, count):
        try:
            response = self.admin.create_partitions({topic: count}, timeout_ms=self.timeout_ms, raise_errors=False)
        except Errors.IncompatibleBrokerVersion:
            raise Failure(
                "UnsupportedVersion", f"CreatePartitions {topic} to {count}: the broker does not support CreatePartitions"
            ) from None
        [answer] = response.results
        if answer.error_code:
            raise kafka_failure(answer.error_code, answer.error_message, f"CreatePartitions {topic} to {count}")

    def alter_configs(self, topic, set_configs, reset_configs):
        ops = [(name, OP_SET, value) for name, value in sorted(set_configs.items())]
        ops += [(name, OP_DELETE, None) for name in reset_configs]
        response = self._send(IncrementalAlterConfigsRequest(resources=[(TOPIC_RESOURCE, topic, ops)], validate_only=False))
        [answer] = response.responses
        if answer.error_code:
            raise kafka_failure(answer.error_code, answer.error_message, f"IncrementalAlterConfigs {topic}")

    def delete(self, topic):
        """True when the topic existed and Kafka accepted its deletion, False when it did not exist."""
        result = self.admin.delete_topics([topic], timeout_ms=self.timeout_ms, raise_errors=False)
        [answer] = result["topics"]
        if answer["error_code"] == Errors.UnknownTopicOrPartitionError.errno:
            return False
        if answer["error_code"]:
            raise kafka_failure(answer["error_code"], answer.get("error_message"), f"DeleteTopics {topic}")
        return True


def ensure(topics, request, deadline):
    while True:
        current = topics.describe(request.topic, deadline)
        plan = plan_ensure(request.topic, current, request.partitions, request.configs)
        try:
            apply_plan(topics, request.topic, plan)
        except Failure as failure:
            # Someone created the topic between our describe and our create (or Kafka is still
            # deleting a topic of that name): ensure again from what the topic is now.
            if failure.code == "TopicAlreadyExists" and not deadline.passed():
                deadline.sleep(0.5)
                continue
            raise
        if not plan.changed():
            return state_reply(current, [])
        state = settle(topics, request, deadline)
        if state is None and plan.create:
            # Kafka accepted the creation; its metadata has not shown the topic yet.
            state = TopicState(request.partitions, dict(request.configs))
        return state_reply(state, plan.changed())


def apply_plan(topics, topic, plan):
    if plan.create:
        topics.create(topic, plan.partitions, plan.set_configs)
        return
    if plan.set_configs or plan.reset_configs:
        topics.alter_configs(topic, plan.set_configs, plan.reset_configs)
    if plan.partitions is not None:
        try:
            topics.raise_partitions(topic, plan.partitions)
        except Failure as failure:
            if plan.set_configs or plan.reset_configs:
                failure.message += " (the topic's configs were updated before this failure)"
            raise


def settle(topics, request, deadline):
    """Read the topic back until the brokers' metadata shows the change (bounded), then answer it.

    Config names are compared, not values: a broker may write a value its own way (a list
    without spaces), and the answer reports it as the broker has it."""
    until = Deadline(min(SETTLE_SECONDS, deadline.remaining()))
    while True:
        state = topics.describe(request.topic, deadline)
        done = (
            state is not None
            and state.partitions >= request.partitions
            and state.configs.keys() == request.configs.keys()
        )
        if done or until.passed():
            return state
        until.sleep(0.2)


def delete(topics, request, deadline):
    if topics.delete(request.topic):
        while topics.describe(request.topic, deadline) is not None:
            if deadline.passed():
                raise Failure(
                    "RequestTimedOut",
                    f"Kafka accepted the deletion of topic {request.topic} but still lists it after {deadline.seconds:.0f} s",
                )
            deadline.sleep(0.2)
    return {"exists": False}


def describe(topics, request, deadline):
    return state_reply(topics.describe(request.topic, deadline))


RUN = {"describe": describe, "ensure": ensure, "delete": delete}


def fetch_scram_secret(secret_arn):
    """(username, password) from a Secrets Manager secret {"username", "password"} (the MSK SCRAM format)."""
    import boto3  # in the Lambda runtime; only the scram path needs it
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "ClientError")
        raise Failure("SecretUnavailable", f"GetSecretValue {secret_arn}: {code}") from None
    except BotoCoreError as err:
        raise Failure("SecretUnavailable", f"GetSecretValue {secret_arn}: {type(err).__name__}") from None
    try:
        secret = json.loads(value.get("SecretString") or "")
        return secret["username"], secret["password"]
    except (ValueError, TypeError, KeyError):
        # Never echo the secret's text: say only what shape was expected.
        raise Failure("InvalidRequest", f"secret {secret_arn} must be JSON with 'username' and 'password'") from None


def run(request, environ, remaining_ms=None, fetch_secret=fetch_scram_secret):
    """Carry out one request; returns the reply (Failures included)."""
    deadline = Deadline(budget_ms(environ, remaining_ms) / 1000)
    settings = connection_settings(request.security, environ, fetch_secret, request.secret_arn)
    request_timeout_ms = int(min(15, deadline.seconds) * 1000)
    net_clients = []
    gave_up = threading.Event()

    def make_net_client(**config):
        client = KafkaNetClient(**config)
        net_clients.append(client)
        return client

    def give_up():
        # kafka-python bounds connecting and each request, but not a TLS handshake that never
        # answers: closing its network client fails every pending call at the deadline.
        gave_up.set()
        for client in net_clients:
            client.close()

    watchdog = threading.Timer(deadline.seconds, give_up)
    watchdog.daemon = True
    watchdog.start()
    admin = None
    try:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=request.bootstrap_servers,
                client_id="mskctl-topic-admin",
                request_timeout_ms=request_timeout_ms,
                bootstrap_timeout_ms=int(min(10, deadline.seconds) * 1000),
                reconnect_backoff_max_ms=1000,
                kafka_client=make_net_client,
                **settings,
            )
        except Errors.KafkaError as err:
            raise connect_failure(err, request, net_clients, deadline, gave_up) from None
        return RUN[request.action](Topics(admin, request_timeout_ms), request, deadline)
    except (Errors.KafkaConnectionError, Errors.KafkaTimeoutError, Errors.NodeNotReadyError) as err:
        if gave_up.is_set():
            raise Failure(
                "RequestTimedOut",
                f"{request.action} {request.topic}: no answer from the brokers within {deadline.seconds:.0f} s",
            ) from None
        raise Failure("Unreachable", f"{request.action} {request.topic}: {err}") from None
    except Errors.IncompatibleBrokerVersion as err:
        raise Failure("UnsupportedVersion", f"{request.action} {request.topic}: {err}") from None
    except Errors.BrokerResponseError as err:
        raise Failure(error_code(err), f"{request.action} {request.topic}: {err}") from None
    finally:
        watchdog.cancel()
        if admin is not None:
            admin.close()
        elif net_clients:
            net_clients[0].close()


def connect_failure(err, request, net_clients, deadline, gave_up):
    """Failure for a client that could not bootstrap: an authentication refusal, or Unreachable."""
    manager = getattr(net_clients[0], "_manager", None) if net_clients else None
    for auth_error in (getattr(manager, "_auth_failures", None) or {}).values():
        return Failure(error_code(auth_error), f"connecting to {request.bootstrap_servers}: {auth_error}")
    if isinstance(err, Errors.BrokerResponseError):
        return Failure(error_code(err), f"connecting to {request.bootstrap_servers}: {err}")
    waited = f"{deadline.seconds:.0f} s" if gave_up.is_set() else "the connection timeout"
    port_hint = {"iam": "9098", "scram": "9096", "plaintext": "9092"}[request.security]
    return Failure(
        "Unreachable",
        f"no Kafka broker at {request.bootstrap_servers} answered within {waited} (security {request.security}): "
        f"check that this function's subnets and security group reach the cluster on port {port_hint}",
    )


def handler(event, context):
    """Lambda entry point."""
    remaining = context.get_remaining_time_in_millis() if context is not None else None
    try:
        request = parse_request(event)
    except Failure as failure:
        logger.warning("rejected request: %s", failure)
        return failure.reply()
    started = time.monotonic()
    try:
        reply = run(request, os.environ, remaining)
    except Failure as failure:
        reply = failure.reply()
    elapsed = time.monotonic() - started
    outcome = reply["error"]["code"] if "error" in reply else ("exists" if reply["exists"] else "absent")
    logger.info(
        "action=%s topic=%s security=%s outcome=%s changed=%s elapsed=%.2fs",
        request.action,
        request.topic,
        request.security,
        outcome,
        ",".join(reply.get("changed", [])) or "-",
        elapsed,
    )
    if "error" in reply:
        logger.warning("%s %s failed: %s", request.action, request.topic, reply["error"]["message"])
    return reply
