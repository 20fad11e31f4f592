"""Producer function: an HTTP request's body becomes one Kafka record (seed 004's producer half).

API Gateway (HTTP API, payload format 2.0, typically `POST /messages` with AWS_IAM auth) invokes
this function; it produces the request body to the topic named by env TOPIC and answers
``200 {"topic", "partition", "offset"}`` once the brokers acknowledged the record (acks=all).
The optional header ``x-message-key`` becomes the record's key (records with one key keep their
order on one partition); without it the producer spreads records over the partitions.

Environment: TOPIC; BOOTSTRAP_SERVERS, or CLUSTER_ARN (resolved once per cold start with MSK
GetBootstrapBrokers); KAFKA_SECURITY iam (default) | scram (with SECRET_ARN) | plaintext;
KAFKA_SECURITY_OVERRIDE=plaintext (set only by mskctl's local emulator); MAX_MESSAGE_BYTES
(default 1048576); KAFKA_TIMEOUT_MS (default 8000); ENABLE_IDEMPOTENCE (default false).
See README.md.

The Kafka producer is created once per container, on the first request, and kept: every new
MSK IAM connection is an authentication, and MSK limits how many a cluster accepts per second.
"""

import base64
import binascii
import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass

import kafka.errors as Errors
from kafka import KafkaProducer
from kafka.net.compat import KafkaNetClient

logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
# kafka-python logs its configuration (SASL password included) and record contents at DEBUG:
# its loggers never go below WARNING, whatever level the runtime gives the root logger.
logging.getLogger("kafka").setLevel(logging.WARNING)

KEY_HEADER = "x-message-key"
DEFAULT_MAX_MESSAGE_BYTES = 1048576  # Kafka's and MSK's default max.message.bytes (about 1 MB)
LIMIT_MAX_MESSAGE_BYTES = 8388608  # the most MSK Serverless allows for max.message.bytes (8 MiB)
RECORD_OVERHEAD = 1024  # batch and record headers on top of key and value
DEFAULT_TIMEOUT_MS = 8000  # API Gateway gives an integration 30 s at most
MARGIN_MS = 1000  # left to the invocation to answer after Kafka gave up
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")  # Kafka's rule for topic names
BROKER_FIELDS = {
    "iam": "BootstrapBrokerStringSaslIam",
    "scram": "BootstrapBrokerStringSaslScram",
    "plaintext": "BootstrapBrokerString",
}


class HttpError(Exception):
    """An answer other than 200, with a JSON message."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------------------------
# Pure parts: settings, the request, the answers.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    topic: str
    bootstrap_servers: str  # or None with cluster_arn
    cluster_arn: str
    security: str
    secret_arn: str
    plaintext_override: bool
    max_message_bytes: int
    timeout_ms: int
    idempotence: bool

    @classmethod
    def from_env(cls, env):
        """Read and check the function's environment; a misconfiguration is an HttpError(500)."""

        def fail(message):
            raise HttpError(500, f"the producer function is misconfigured: {message}")

        topic = env.get("TOPIC", "").strip()
        if not topic:
            fail("set TOPIC to the topic to produce to")
        if not TOPIC_NAME.match(topic) or topic in (".", ".."):
            fail(f"TOPIC {topic!r} is not a legal Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)")
        servers = env.get("BOOTSTRAP_SERVERS", "").strip() or None
        cluster_arn = env.get("CLUSTER_ARN", "").strip() or None
        if not servers and not cluster_arn:
            fail("set BOOTSTRAP_SERVERS (host:port,...) or CLUSTER_ARN (an MSK cluster)")
        security = env.get("KAFKA_SECURITY", "iam").strip() or "iam"
        if security not in BROKER_FIELDS:
            fail(f"KAFKA_SECURITY must be iam, scram or plaintext, not {security!r}")
        secret_arn = env.get("SECRET_ARN", "").strip() or None
        if security == "scram" and not secret_arn:
            fail("KAFKA_SECURITY scram needs SECRET_ARN (a Secrets Manager secret with username and password)")
        override = env.get("KAFKA_SECURITY_OVERRIDE", "")
        if override not in ("", "plaintext"):
            fail(f"KAFKA_SECURITY_OVERRIDE may only be 'plaintext' (or unset), not {override!r}")
        max_bytes = _positive_int(env, "MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, fail)
        if max_bytes > LIMIT_MAX_MESSAGE_BYTES:
            fail(f"MAX_MESSAGE_BYTES is {max_bytes}; MSK allows max.message.bytes up to {LIMIT_MAX_MESSAGE_BYTES}")
        timeout_ms = _positive_int(env, "KAFKA_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, fail)
        idempotence = env.get("ENABLE_IDEMPOTENCE", "false").strip().lower()
        if idempotence not in ("true", "false"):
            fail(f"ENABLE_IDEMPOTENCE must be true or false, not {idempotence!r}")
        return cls(
            topic, servers, cluster_arn, security, secret_arn, override == "plaintext",
            max_bytes, timeout_ms, idempotence == "true",
        )  # fmt: skip

    def connection(self, fetch_secret):
        """kafka-python security settings (fetch_secret reads SCRAM credentials)."""
        if self.plaintext_override or self.security == "plaintext":
            return {"security_protocol": "PLAINTEXT"}
        if self.security == "iam":
            return {"security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM"}
        username, password = fetch_secret(self.secret_arn)
        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": username,
            "sasl_plain_password": password,
        }


def _positive_int(env, name, default, fail):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        fail(f"{name} must be a positive integer, not {raw!r}")
    return int(raw)


def parse_event(event, max_message_bytes):
    """(key, value) bytes of the record an API Gateway event asks for; HttpError(400 | 413) otherwise."""
    if not isinstance(event, dict):
        raise HttpError(400, "expected an API Gateway HTTP API event")
    method = (event.get("requestContext") or {}).get("http", {}).get("method") or event.get("httpMethod")
    if method != "POST":
        raise HttpError(400, f"only POST is accepted (got {method or 'no method'}): the request body is the message")
    body = event.get("body")
    if body is None or body == "":
        raise HttpError(400, "the request body is empty: it is the message to produce")
    if event.get("isBase64Encoded"):
        try:
            value = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, "the body is marked base64-encoded but is not valid base64") from None
    else:
        value = body.encode("utf-8")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    key = headers.get(KEY_HEADER)
    key = key.encode("utf-8") if key else None
    size = len(value) + len(key or b"")
    if size > max_message_bytes:
        raise HttpError(
            413, f"the message is {size} bytes; this producer accepts at most {max_message_bytes} (MAX_MESSAGE_BYTES)"
        )
    return key, value


def http_response(status, payload):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(payload)}


def send_failure(error, topic, brokers_known, topic_known):
    """The HttpError for a failed send: 413 for size, 503 when Kafka cannot be reached, 502 when it refused."""
    if isinstance(error, (Errors.MessageSizeTooLargeError, Errors.RecordListTooLargeError)):
        return HttpError(413, f"the message is larger than topic {topic} accepts (its max.message.bytes)")
    if isinstance(error, Errors.TopicAuthorizationFailedError):
        return HttpError(
            502, f"not authorized to write to topic {topic}: the function's role needs kafka-cluster:WriteData on it"
        )
    if isinstance(error, Errors.ClusterAuthorizationFailedError):
        return HttpError(
            502, "not authorized by the cluster (idempotent producing needs kafka-cluster:WriteDataIdempotently)"
        )
    if isinstance(error, Errors.KafkaTimeoutError) and brokers_known and not topic_known:
        return HttpError(502, f"topic {topic} does not exist on the cluster")
    if isinstance(error, (Errors.KafkaTimeoutError, Errors.KafkaConnectionError, Errors.NodeNotReadyError)):
        return HttpError(503, f"Kafka did not acknowledge the message in time: {error}")
    if isinstance(error, Errors.BrokerResponseError):
        name = error.message.title().replace("_", "") if isinstance(error.message, str) else type(error).__name__
        return HttpError(502, f"Kafka refused the message: {name}")
    return HttpError(502, f"Kafka refused the message: {type(error).__name__}")


def brokers_of(answer, security, cluster_arn):
    """The bootstrap string of GetBootstrapBrokers' answer for the security in use."""
    servers = answer.get(BROKER_FIELDS[security])
    if not servers:
        raise HttpError(
            502, f"cluster {cluster_arn} has no {BROKER_FIELDS[security]}: is {security} authentication enabled on it?"
        )
    return servers


def budget_ms(timeout_ms, remaining_ms):
    budget = timeout_ms if remaining_ms is None else min(timeout_ms, remaining_ms - MARGIN_MS)
    return max(budget, 500)


# ---------------------------------------------------------------------------------------------
# AWS and Kafka side: resolved and created once per container.
# ---------------------------------------------------------------------------------------------

_state = {"bootstrap": None, "producer": None}
_lock = threading.Lock()


def resolve_cluster_brokers(cluster_arn, security):
    import boto3  # in the Lambda runtime
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = boto3.client("kafka").get_bootstrap_brokers(ClusterArn=cluster_arn)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "ClientError")
        raise HttpError(502, f"GetBootstrapBrokers {cluster_arn}: {code}") from None
    except BotoCoreError as err:
        raise HttpError(503, f"GetBootstrapBrokers {cluster_arn}: {type(err).__name__}") from None
    return brokers_of(answer, security, cluster_arn)


def fetch_scram_secret(secret_arn):
    import boto3  # in the Lambda runtime
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "ClientError")
        raise HttpError(502, f"GetSecretValue {secret_arn}: {code}") from None
    except BotoCoreError as err:
        raise HttpError(503, f"GetSecretValue {secret_arn}: {type(err).__name__}") from None
    try:
        secret = json.loads(value.get("SecretString") or "")
        return secret["username"], secret["password"]
    except (ValueError, TypeError, KeyError):
        raise HttpError(500, f"secret {secret_arn} must be JSON with 'username' and 'password'") from None


def bootstrap_servers(settings):
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    if _state["bootstrap"] is None:
        _state["bootstrap"] = resolve_cluster_brokers(settings.cluster_arn, settings.security)
        logger.info("cluster %s bootstrap brokers: %s", settings.cluster_arn, _state["bootstrap"])
    return _state["bootstrap"]


def producer_for(settings, budget):
    """The container's producer, created on first use within `budget` ms; HttpError(503) if Kafka cannot be reached."""
    with _lock:
        if _state["producer"] is not None:
            return _state["producer"]
        servers = bootstrap_servers(settings)
        connection = settings.connection(fetch_scram_secret)
        net_clients = []

        def make_net_client(**config):
            client = KafkaNetClient(**config)
            net_clients.append(client)
            return client

        def give_up():
            # kafka-python bounds connecting, but not a TLS handshake that never answers.
            for client in net_clients:
                cut_connections(client)

        # Fires only if the bootstrap timeout (the same budget) did not end the wait.
        watchdog = threading.Timer(budget / 1000 + 0.3, give_up)
        watchdog.daemon = True
        watchdog.start()
        try:
            _state["producer"] = KafkaProducer(
                bootstrap_servers=servers,
                client_id="mskctl-producer",
                acks="all",
                # Idempotence needs kafka-cluster:WriteDataIdempotently on the cluster with MSK IAM;
                # without it, one request in flight keeps retried records in order.
                enable_idempotence=settings.idempotence,
                max_in_flight_requests_per_connection=5 if settings.idempotence else 1,
                allow_auto_create_topics=False,
                max_request_size=settings.max_message_bytes + RECORD_OVERHEAD,
                bootstrap_timeout_ms=budget,
                max_block_ms=settings.timeout_ms,
                request_timeout_ms=settings.timeout_ms,
                delivery_timeout_ms=settings.timeout_ms,
                # AWS's advice for MSK IAM clients: back off reconnects (IAM authentications are rate-limited).
                reconnect_backoff_ms=1000 if settings.security == "iam" else 50,
                reconnect_backoff_max_ms=1000,
                kafka_client=make_net_client,
                **connection,
            )
        except Errors.KafkaError as err:
            manager = getattr(net_clients[0], "_manager", None) if net_clients else None
            refusals = list((getattr(manager, "_auth_failures", None) or {}).values())
            if net_clients:
                net_clients[0].close()
            if refusals:
                raise HttpError(502, f"Kafka brokers at {servers} refused the function: {refusals[0]}") from None
            raise HttpError(
                503, f"Kafka brokers at {servers} cannot be reached ({type(err).__name__}); try again later"
            ) from None
        finally:
            watchdog.cancel()
        return _state["producer"]


def cut_connections(net_client):
    """Shut down a kafka-python client's broker sockets from another thread.

    The producer drives its network loop on the calling thread while it bootstraps, so the loop
    cannot be stopped from outside; a socket shut down under it wakes it with an error instead.
    """
    net = net_client._net
    for _ in range(3):
        try:
            keys = list(net._selector.get_map().values())
            break
        except RuntimeError:  # the map changed while it was read
            continue
    else:
        return
    for key in keys:
        sock = key.fileobj
        if isinstance(sock, socket.socket) and sock is not net._wakeup_r:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def produce(producer, settings, key, value, budget):
    # send() waits up to max_block_ms for the topic's metadata: never longer than this request may.
    producer.config["max_block_ms"] = min(settings.timeout_ms, budget)
    try:
        future = producer.send(settings.topic, value=value, key=key)
        metadata = future.get(timeout=budget / 1000)
    except Errors.KafkaError as err:
        cluster = producer._metadata  # kafka-python's view of the cluster: were brokers and the topic seen?
        topic_known = cluster.partitions_for_topic(settings.topic) is not None
        raise send_failure(err, settings.topic, bool(cluster.brokers()), topic_known) from None
    return {"topic": metadata.topic, "partition": metadata.partition, "offset": metadata.offset}


def handler(event, context):
    """Lambda entry point (API Gateway HTTP API, payload format 2.0)."""
    started = time.monotonic()
    remaining = context.get_remaining_time_in_millis() if context is not None else None
    try:
        settings = Settings.from_env(os.environ)
        key, value = parse_event(event, settings.max_message_bytes)
        budget = budget_ms(settings.timeout_ms, remaining)
        producer = producer_for(settings, budget)
        budget = budget_ms(settings.timeout_ms, remaining and remaining - int((time.monotonic() - started) * 1000))
        result = produce(producer, settings, key, value, budget)
    except HttpError as err:
        logger.warning("answered %d: %s", err.status, err.message)
        return http_response(err.status, {"message": err.message})
    logger.info(
        "produced %d bytes to %s partition %d offset %d in %.3fs",
        len(value),
        result["topic"],
        result["partition"],
        result["offset"],
        time.monotonic() - started,
    )
    return http_response(200, result)
