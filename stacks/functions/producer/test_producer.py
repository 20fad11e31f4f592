"""Tests for the producer handler.

    scripts/functions-setup && .venv/functions/bin/python -m unittest discover -s stacks/functions/producer

The request, settings and answers are tested on plain data; producing against a real
Kafka-protocol broker, Tansu, started on a free loopback port for this module, and every
produced record is read back with a separate kafka-python consumer.

What Tansu cannot show, and how it is covered instead: it has no authentication (MSK IAM and
SCRAM settings are tested on plain data; a TLS connection to its plaintext port shows the bounded
give-up when a handshake never completes); it creates missing topics on produce and does not
enforce max.message.bytes (the missing-topic and too-large answers are tested through
send_failure on kafka-python's errors); GetBootstrapBrokers is replaced by a stub that answers
Tansu's address (the emulator tests the AWS call).
"""

import base64
import logging
import os
import socket
import sys
import threading
import time
import unittest
import warnings
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import kafka.errors as Errors  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition  # noqa: E402

import aws_stub  # noqa: E402
import producer  # noqa: E402
import tansu_broker  # noqa: E402
from producer import HttpError, Settings  # noqa: E402

logging.getLogger("producer").addHandler(logging.NullHandler())


def http_event(body, method="POST", base64_encoded=False, headers=None):
    """An API Gateway HTTP API payload format 2.0 event."""
    return {
        "version": "2.0",
        "routeKey": f"{method} /messages",
        "rawPath": "/messages",
        "headers": headers or {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": "/messages"}, "requestId": "r-1"},
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def status_and_body(response):
    import json

    return response["statusCode"], json.loads(response["body"])


# ---------------------------------------------------------------------------------------------
# Pure parts
# ---------------------------------------------------------------------------------------------


class SettingsFromEnv(unittest.TestCase):
    def test_defaults(self):
        s = Settings.from_env({"TOPIC": "orders", "CLUSTER_ARN": "arn:aws:kafka:eu-west-1:1:cluster/c/u"})
        self.assertEqual(s.security, "iam")
        self.assertEqual(s.max_message_bytes, 1048576)
        self.assertEqual(s.timeout_ms, 8000)
        self.assertFalse(s.idempotence)
        self.assertFalse(s.plaintext_override)
        self.assertIsNone(s.bootstrap_servers)

    def test_misconfigurations_answer_500_naming_the_variable(self):
        base = {"TOPIC": "t", "BOOTSTRAP_SERVERS": "h:9098"}
        cases = [
            ({"BOOTSTRAP_SERVERS": "h:9098"}, "TOPIC"),
            ({"TOPIC": "t"}, "CLUSTER_ARN"),
            ({"TOPIC": "my topic", "BOOTSTRAP_SERVERS": "h:9098"}, "not a legal Kafka topic name"),
            ({**base, "KAFKA_SECURITY": "tls"}, "KAFKA_SECURITY"),
            ({**base, "KAFKA_SECURITY": "scram"}, "SECRET_ARN"),
            ({**base, "KAFKA_SECURITY_OVERRIDE": "ssl"}, "KAFKA_SECURITY_OVERRIDE"),
            ({**base, "MAX_MESSAGE_BYTES": "9000000"}, "8388608"),
            ({**base, "MAX_MESSAGE_BYTES": "1MB"}, "MAX_MESSAGE_BYTES"),
            ({**base, "KAFKA_TIMEOUT_MS": "0"}, "KAFKA_TIMEOUT_MS"),
            ({**base, "ENABLE_IDEMPOTENCE": "yes"}, "ENABLE_IDEMPOTENCE"),
        ]
        for env, words in cases:
            with self.subTest(env=env):
                with self.assertRaises(HttpError) as caught:
                    Settings.from_env(env)
                self.assertEqual(caught.exception.status, 500)
                self.assertIn(words, caught.exception.message)

    def test_connection_settings(self):
        def no_secret(arn):
            raise AssertionError("the secret must not be read")

        base = {"TOPIC": "t", "BOOTSTRAP_SERVERS": "h:9098"}
        iam = Settings.from_env(base)
        self.assertEqual(iam.connection(no_secret), {"security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM"})
        scram = Settings.from_env({**base, "KAFKA_SECURITY": "scram", "SECRET_ARN": "arn:s"})
        self.assertEqual(
            scram.connection(lambda arn: ("u", "p-" + arn)),
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u", "sasl_plain_password": "p-arn:s"},
        )
        forced = Settings.from_env({**base, "KAFKA_SECURITY": "scram", "SECRET_ARN": "arn:s", "KAFKA_SECURITY_OVERRIDE": "plaintext"})
        self.assertEqual(forced.connection(no_secret), {"security_protocol": "PLAINTEXT"})


class KafkaPythonAcceptsTheSettings(unittest.TestCase):
    def test_settings_are_producer_configs_with_registered_mechanisms(self):
        from kafka import KafkaProducer
        from kafka.net.sasl import SASL_MECHANISMS

        base = {"TOPIC": "t", "BOOTSTRAP_SERVERS": "h:9098", "SECRET_ARN": "arn:s"}
        for security in ("iam", "scram", "plaintext"):
            with self.subTest(security=security):
                settings = Settings.from_env({**base, "KAFKA_SECURITY": security}).connection(lambda arn: ("u", "p"))
                self.assertLessEqual(set(settings), set(KafkaProducer.DEFAULT_CONFIG))
                if "sasl_mechanism" in settings:
                    self.assertIn(settings["sasl_mechanism"], SASL_MECHANISMS)


class ParseEvent(unittest.TestCase):
    def test_text_body(self):
        self.assertEqual(producer.parse_event(http_event('{"a": 1}'), 100), (None, b'{"a": 1}'))

    def test_base64_body_is_decoded(self):
        raw = bytes(range(256))
        event = http_event(base64.b64encode(raw).decode(), base64_encoded=True)
        self.assertEqual(producer.parse_event(event, 1000), (None, raw))

    def test_key_header_any_case(self):
        event = http_event("v", headers={"X-Message-Key": "customer-42"})
        self.assertEqual(producer.parse_event(event, 100), (b"customer-42", b"v"))

    def test_size_limit_counts_key_and_value(self):
        self.assertEqual(producer.parse_event(http_event("x" * 10), 10), (None, b"x" * 10))
        with self.assertRaises(HttpError) as caught:
            producer.parse_event(http_event("x" * 8, headers={"x-message-key": "abc"}), 10)
        self.assertEqual(caught.exception.status, 413)
        self.assertIn("11 bytes", caught.exception.message)

    def test_bad_requests(self):
        cases = [
            (http_event("v", method="GET"), "only POST"),
            (http_event(""), "empty"),
            (http_event(None), "empty"),
            (http_event("not base64!", base64_encoded=True), "not valid base64"),
            ("text", "API Gateway"),
        ]
        for event, words in cases:
            with self.subTest(event=event):
                with self.assertRaises(HttpError) as caught:
                    producer.parse_event(event, 100)
                self.assertEqual(caught.exception.status, 400)
                self.assertIn(words, caught.exception.message)


class SendFailures(unittest.TestCase):
    def test_answers(self):
        cases = [
            (Errors.MessageSizeTooLargeError("x"), True, True, 413, "max.message.bytes"),
            (Errors.RecordListTooLargeError("x"), True, True, 413, "max.message.bytes"),
            (Errors.TopicAuthorizationFailedError("x"), True, True, 502, "kafka-cluster:WriteData"),
            (Errors.ClusterAuthorizationFailedError("x"), True, True, 502, "WriteDataIdempotently"),
            (Errors.KafkaTimeoutError("x"), True, False, 502, "does not exist"),
            (Errors.KafkaTimeoutError("x"), False, False, 503, "in time"),
            (Errors.KafkaTimeoutError("x"), True, True, 503, "in time"),
            (Errors.KafkaConnectionError("x"), True, True, 503, "in time"),
            (Errors.PolicyViolationError("x"), True, True, 502, "PolicyViolation"),
        ]
        for error, brokers_known, topic_known, status, words in cases:
            with self.subTest(error=error, brokers_known=brokers_known, topic_known=topic_known):
                answer = producer.send_failure(error, "orders", brokers_known, topic_known)
                self.assertEqual(answer.status, status)
                self.assertIn(words, answer.message)


class BootstrapBrokers(unittest.TestCase):
    def test_field_follows_security(self):
        answer = {
            "BootstrapBrokerStringSaslIam": "b-1:9098",
            "BootstrapBrokerStringSaslScram": "b-1:9096",
            "BootstrapBrokerString": "b-1:9092",
        }
        for security, servers in (("iam", "b-1:9098"), ("scram", "b-1:9096"), ("plaintext", "b-1:9092")):
            self.assertEqual(producer.brokers_of(answer, security, "arn"), servers)

    def test_resolved_with_get_bootstrap_brokers(self):
        answer = {"BootstrapBrokerStringSaslIam": "b-1:9098,b-2:9098"}
        with aws_stub.installed({"kafka": {"get_bootstrap_brokers": lambda **_: answer}}) as calls:
            self.assertEqual(producer.resolve_cluster_brokers("arn:c", "iam"), "b-1:9098,b-2:9098")
        self.assertEqual(calls, [("kafka", "get_bootstrap_brokers", {"ClusterArn": "arn:c"})])

    def test_aws_refusals(self):
        def denied(**_):
            raise aws_stub.ClientError("AccessDeniedException", "GetBootstrapBrokers")

        def offline(**_):
            raise aws_stub.EndpointConnectionError()

        for answer, status, words in ((denied, 502, "AccessDeniedException"), (offline, 503, "EndpointConnectionError")):
            with self.subTest(words=words):
                with aws_stub.installed({"kafka": {"get_bootstrap_brokers": answer}}):
                    with self.assertRaises(HttpError) as caught:
                        producer.resolve_cluster_brokers("arn:c", "iam")
                self.assertEqual(caught.exception.status, status)
                self.assertIn(words, caught.exception.message)

    def test_malformed_scram_secret_is_not_echoed(self):
        answer = {"get_secret_value": lambda **_: {"SecretString": "hunter2"}}
        with aws_stub.installed({"secretsmanager": answer}):
            with self.assertRaises(HttpError) as caught:
                producer.fetch_scram_secret("arn:s")
        self.assertEqual(caught.exception.status, 500)
        self.assertNotIn("hunter2", caught.exception.message)

    def test_missing_field_says_which_auth(self):
        with self.assertRaises(HttpError) as caught:
            producer.brokers_of({"BootstrapBrokerString": "b:9092"}, "iam", "arn:c")
        self.assertEqual(caught.exception.status, 502)
        self.assertIn("BootstrapBrokerStringSaslIam", caught.exception.message)

    def test_budget(self):
        self.assertEqual(producer.budget_ms(8000, None), 8000)
        self.assertEqual(producer.budget_ms(8000, 5000), 4000)
        self.assertEqual(producer.budget_ms(8000, 100), 500)


# ---------------------------------------------------------------------------------------------
# Against a real broker
# ---------------------------------------------------------------------------------------------

BROKER = tansu_broker.Broker()


def setUpModule():
    # kafka-python leaves the sockets of failed connection attempts to the garbage collector.
    warnings.filterwarnings("ignore", category=ResourceWarning)
    BROKER.start()
    admin = KafkaAdminClient(bootstrap_servers=BROKER.bootstrap)
    admin.create_topics({"messages": {"num_partitions": 3}})
    admin.close()


def tearDownModule():
    forget_producer()
    BROKER.stop()


def forget_producer():
    """A new container: no producer, no resolved brokers."""
    if producer._state["producer"] is not None:
        producer._state["producer"].close(timeout=1)
    producer._state.update(producer=None, bootstrap=None)


class Context:
    def get_remaining_time_in_millis(self):
        return 20000


def read_back(topic, partition, offset):
    consumer = KafkaConsumer(bootstrap_servers=BROKER.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        until = time.monotonic() + 10
        while time.monotonic() < until:
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset == offset:
                    return record
        raise AssertionError(f"no record at {topic}/{partition}@{offset}")
    finally:
        consumer.close()


class AgainstTansu(unittest.TestCase):
    ENV = {"TOPIC": "messages", "KAFKA_SECURITY_OVERRIDE": "plaintext", "KAFKA_TIMEOUT_MS": "5000"}

    def setUp(self):
        forget_producer()

    def invoke(self, event, **env):
        with mock.patch.dict(os.environ, {**self.ENV, "BOOTSTRAP_SERVERS": BROKER.bootstrap, **env}):
            return status_and_body(producer.handler(event, Context()))

    def test_body_is_produced_with_its_key_and_read_back(self):
        status, body = self.invoke(http_event('{"order": 1}', headers={"x-message-key": "customer-7"}))
        self.assertEqual(status, 200)
        self.assertEqual(body["topic"], "messages")
        record = read_back("messages", body["partition"], body["offset"])
        self.assertEqual((record.key, record.value), (b"customer-7", b'{"order": 1}'))

    def test_binary_body_arrives_byte_for_byte(self):
        raw = bytes(range(256)) * 4
        status, body = self.invoke(http_event(base64.b64encode(raw).decode(), base64_encoded=True))
        self.assertEqual(status, 200)
        self.assertEqual(read_back("messages", body["partition"], body["offset"]).value, raw)

    def test_one_producer_per_container(self):
        with mock.patch.object(producer, "KafkaProducer", wraps=producer.KafkaProducer) as made:
            first = self.invoke(http_event("one"))
            second = self.invoke(http_event("two"))
        self.assertEqual((first[0], second[0]), (200, 200))
        self.assertEqual(made.call_count, 1)
        kwargs = made.call_args.kwargs
        self.assertEqual((kwargs["acks"], kwargs["enable_idempotence"], kwargs["allow_auto_create_topics"]), ("all", False, False))

    def test_idempotence_when_asked(self):
        with mock.patch.object(producer, "KafkaProducer", wraps=producer.KafkaProducer) as made:
            status, body = self.invoke(http_event("once"), ENABLE_IDEMPOTENCE="true")
        self.assertEqual(status, 200)
        self.assertTrue(made.call_args.kwargs["enable_idempotence"])
        self.assertEqual(read_back("messages", body["partition"], body["offset"]).value, b"once")

    def test_cluster_arn_resolved_once_per_cold_start(self):
        calls = []

        def resolve(arn, security):
            calls.append((arn, security))
            return BROKER.bootstrap

        env = {**self.ENV, "CLUSTER_ARN": "arn:aws:kafka:eu-west-1:1:cluster/c/u"}
        with mock.patch.object(producer, "resolve_cluster_brokers", resolve), mock.patch.dict(os.environ, env):
            os.environ.pop("BOOTSTRAP_SERVERS", None)
            answers = [producer.handler(http_event(v), Context())["statusCode"] for v in ("a", "b")]
        self.assertEqual(answers, [200, 200])
        self.assertEqual(calls, [("arn:aws:kafka:eu-west-1:1:cluster/c/u", "iam")])

    def test_bad_requests_do_not_reach_kafka(self):
        with mock.patch.object(producer, "KafkaProducer") as made:
            self.assertEqual(self.invoke(http_event("", method="POST"))[0], 400)
            self.assertEqual(self.invoke(http_event("x", method="PUT"))[0], 400)
            self.assertEqual(self.invoke(http_event("x" * 11), MAX_MESSAGE_BYTES="10")[0], 413)
            self.assertEqual(self.invoke(http_event("x"), TOPIC="")[0], 500)
        made.assert_not_called()

    def test_message_contents_stay_out_of_logs(self):
        with self.assertLogs("producer", level=logging.DEBUG) as logs:
            status, _ = self.invoke(http_event("secret-payload-xyz"))
        self.assertEqual(status, 200)
        self.assertTrue(any("produced 18 bytes to messages" in line for line in logs.output))
        self.assertFalse(any("secret-payload-xyz" in line for line in logs.output))


class Unreachable(unittest.TestCase):
    def setUp(self):
        forget_producer()

    def test_closed_port_answers_503_in_bounded_time_and_next_request_tries_again(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            env = {"TOPIC": "t", "BOOTSTRAP_SERVERS": f"127.0.0.1:{sock.getsockname()[1]}", "KAFKA_SECURITY": "plaintext", "KAFKA_TIMEOUT_MS": "2000"}
            with mock.patch.dict(os.environ, env):
                started = time.monotonic()
                status, body = status_and_body(producer.handler(http_event("x"), Context()))
                elapsed = time.monotonic() - started
                self.assertEqual(status, 503)
                self.assertIn("cannot be reached", body["message"])
                self.assertLess(elapsed, 4)
                self.assertIsNone(producer._state["producer"])  # nothing broken is kept
                self.assertEqual(producer.handler(http_event("x"), Context())["statusCode"], 503)

    def test_tls_handshake_that_never_completes_is_cut(self):
        # SCRAM means TLS; Tansu's plaintext port never answers the TLS hello.
        env = {"TOPIC": "t", "BOOTSTRAP_SERVERS": BROKER.bootstrap, "KAFKA_SECURITY": "scram", "SECRET_ARN": "arn:s", "KAFKA_TIMEOUT_MS": "2000"}
        outcome = {}

        def invoke():
            outcome["response"] = producer.handler(http_event("x"), Context())

        with mock.patch.dict(os.environ, env), mock.patch.object(producer, "fetch_scram_secret", lambda arn: ("u", "pw-never-shown")):
            worker = threading.Thread(target=invoke, daemon=True)
            started = time.monotonic()
            worker.start()
            worker.join(timeout=10)
        self.assertFalse(worker.is_alive(), "the handler did not give up at its deadline")
        self.assertLess(time.monotonic() - started, 4)
        status, body = status_and_body(outcome["response"])
        self.assertEqual(status, 503)
        self.assertNotIn("pw-never-shown", body["message"])


if __name__ == "__main__":
    unittest.main()
