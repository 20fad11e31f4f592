"""Tests for the topic-admin handler.

    scripts/functions-setup && .venv/functions/bin/python -m unittest discover -s stacks/functions/topic_admin

The decisions are tested on plain data; the Kafka calls against a real Kafka-protocol broker,
Tansu, started on a free loopback port for this module (stacks/functions/tansu_broker.py) and
checked with a separate kafka-python admin client, not through the handler's own reads.

What Tansu cannot show, and how it is covered instead:
- CreatePartitions: Tansu does not implement it. Raising partitions is covered by the pure
  plan tests, by the CreatePartitions request kafka-python builds for the plan, by the mapping of
  the broker's answers (InvalidPartitions, PolicyViolation) to error codes, and against Tansu by
  the answer a broker without the API gets (UnsupportedVersion, topic left as it was).
- AWS_MSK_IAM and SCRAM: Tansu has no authentication. The security settings are tested on plain
  data; a TLS connection to Tansu's plaintext port shows the bounded give-up when a handshake
  never completes.
- Kafka's validation (InvalidConfig, PolicyViolation, TopicAuthorizationFailed): Tansu accepts any
  config; these answers are tested through the response mapping.
- Tansu marks configs set on a topic DEFAULT_CONFIG and lists only those; real Kafka marks them
  DYNAMIC_TOPIC_CONFIG among every other config (ConfigsSetOnTopic covers both shapes).
"""

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

from kafka import KafkaAdminClient  # noqa: E402
from kafka.admin import ConfigResource  # noqa: E402
from kafka.protocol.admin import (  # noqa: E402
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    IncrementalAlterConfigsResponse,
)

import aws_stub  # noqa: E402
import tansu_broker  # noqa: E402
import topic_admin  # noqa: E402
from topic_admin import EnsurePlan, Failure, TopicState, plan_ensure  # noqa: E402

# The handler's log lines are for CloudWatch; keep them out of the test output (assertLogs still sees them).
logging.getLogger("topic_admin").addHandler(logging.NullHandler())

PLAINTEXT_ENV = {"KAFKA_SECURITY_OVERRIDE": "plaintext", "KAFKA_TIMEOUT_MS": "10000"}


def payload(action, topic, **extra):
    event = {"action": action, "bootstrap_servers": "b-1.example:9098,b-2.example:9098", "security": "iam", "topic": topic}
    event.update(extra)
    return event


# ---------------------------------------------------------------------------------------------
# Pure parts
# ---------------------------------------------------------------------------------------------


class ParseRequest(unittest.TestCase):
    def test_ensure_payload(self):
        request = topic_admin.parse_request(
            payload("ensure", "orders", partitions=3, configs={"retention.ms": 86400000, "cleanup.policy": "compact"})
        )
        self.assertEqual(request.action, "ensure")
        self.assertEqual(request.partitions, 3)
        self.assertEqual(request.configs, {"retention.ms": "86400000", "cleanup.policy": "compact"})

    def test_booleans_are_written_as_kafka_writes_them(self):
        request = topic_admin.parse_request(payload("ensure", "t", partitions=1, configs={"preallocate": True}))
        self.assertEqual(request.configs, {"preallocate": "true"})

    def test_describe_ignores_partitions_and_configs(self):
        request = topic_admin.parse_request(payload("describe", "orders"))
        self.assertIsNone(request.partitions)
        self.assertEqual(request.configs, {})

    def test_rejected_payloads_name_what_is_wrong(self):
        cases = [
            ("text", "InvalidRequest", "JSON object"),
            ({"action": "create", "topic": "t"}, "InvalidRequest", "action must be one of"),
            (payload("describe", "t", bootstrap_servers=""), "InvalidRequest", "bootstrap_servers"),
            (payload("describe", "t", bootstrap_servers="host-without-port"), "InvalidRequest", "host:port"),
            (payload("describe", "t", security="tls"), "InvalidRequest", "security must be"),
            (payload("describe", "t", security="scram"), "InvalidRequest", "secret_arn"),
            (payload("describe", ""), "InvalidRequest", "topic must be"),
            (payload("describe", "bad topic!"), "InvalidTopic", "not legal"),
            (payload("describe", "x" * 250), "InvalidTopic", "not legal"),
            (payload("describe", ".."), "InvalidTopic", "not legal"),
            (payload("ensure", "t"), "InvalidRequest", "partitions"),
            (payload("ensure", "t", partitions=0), "InvalidRequest", "partitions"),
            (payload("ensure", "t", partitions=True), "InvalidRequest", "partitions"),
            (payload("ensure", "t", partitions=1, configs=["a"]), "InvalidRequest", "configs must be"),
            (payload("ensure", "t", partitions=1, configs={"a": None}), "InvalidRequest", "config a"),
            (payload("ensure", "t", partitions=1, configs={"a": 1.5}), "InvalidRequest", "config a"),
        ]
        for event, code, words in cases:
            with self.subTest(event=event):
                with self.assertRaises(Failure) as caught:
                    topic_admin.parse_request(event)
                self.assertEqual(caught.exception.code, code)
                self.assertIn(words, caught.exception.message)

    def test_handler_answers_bad_payloads_without_raising(self):
        reply = topic_admin.handler({"action": "ensure"}, None)
        self.assertEqual(reply["error"]["code"], "InvalidRequest")


class ConnectionSettings(unittest.TestCase):
    def no_secret(self, arn):
        raise AssertionError("the secret must not be read")

    def test_iam_is_sasl_ssl_with_aws_msk_iam(self):
        self.assertEqual(
            topic_admin.connection_settings("iam", {}, self.no_secret),
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM"},
        )

    def test_scram_reads_the_secret(self):
        settings = topic_admin.connection_settings("scram", {}, lambda arn: ("alice", "s3cret-" + arn), "arn:1")
        self.assertEqual(
            settings,
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": "alice",
                "sasl_plain_password": "s3cret-arn:1",
            },
        )

    def test_plaintext(self):
        self.assertEqual(topic_admin.connection_settings("plaintext", {}, self.no_secret), {"security_protocol": "PLAINTEXT"})

    def test_override_forces_plaintext_and_reads_no_secret(self):
        env = {"KAFKA_SECURITY_OVERRIDE": "plaintext"}
        for security in ("iam", "scram"):
            with self.subTest(security=security):
                settings = topic_admin.connection_settings(security, env, self.no_secret, "arn:1")
                self.assertEqual(settings, {"security_protocol": "PLAINTEXT"})

    def test_settings_are_kafka_python_configs_with_registered_mechanisms(self):
        from kafka.net.sasl import SASL_MECHANISMS, get_sasl_mechanism

        for security in ("iam", "scram", "plaintext"):
            with self.subTest(security=security):
                settings = topic_admin.connection_settings(security, {}, lambda arn: ("alice", "pw"), "arn:1")
                self.assertLessEqual(set(settings), set(KafkaAdminClient.DEFAULT_CONFIG))
                if "sasl_mechanism" in settings:
                    self.assertIn(settings["sasl_mechanism"], SASL_MECHANISMS)
        scram = topic_admin.connection_settings("scram", {}, lambda arn: ("alice", "pw"), "arn:1")
        get_sasl_mechanism("SCRAM-SHA-512")(host="b-1", **scram)  # kafka-python accepts the settings

    def test_unknown_override_is_refused(self):
        with self.assertRaises(Failure) as caught:
            topic_admin.connection_settings("iam", {"KAFKA_SECURITY_OVERRIDE": "ssl"}, self.no_secret)
        self.assertEqual(caught.exception.code, "InvalidRequest")


class ScramSecret(unittest.TestCase):
    ARN = "arn:aws:secretsmanager:eu-west-1:1:secret:AmazonMSK_admin"

    def fetch(self, answer):
        with aws_stub.installed({"secretsmanager": {"get_secret_value": answer}}) as calls:
            try:
                return topic_admin.fetch_scram_secret(self.ARN)
            finally:
                self.assertEqual(calls, [("secretsmanager", "get_secret_value", {"SecretId": self.ARN})])

    def test_username_and_password(self):
        answer = lambda **_: {"SecretString": '{"username": "alice", "password": "hunter2"}'}  # noqa: E731
        self.assertEqual(self.fetch(answer), ("alice", "hunter2"))

    def test_malformed_secret_is_refused_without_echoing_it(self):
        for text in ("hunter2 is not json", '{"username": "alice", "pass": "hunter2"}', None):
            with self.subTest(text=text):
                with self.assertRaises(Failure) as caught:
                    self.fetch(lambda **_: {"SecretString": text})
                self.assertEqual(caught.exception.code, "InvalidRequest")
                self.assertIn("'username' and 'password'", caught.exception.message)
                self.assertNotIn("hunter2", caught.exception.message)

    def test_secrets_manager_refusals(self):
        def denied(**_):
            raise aws_stub.ClientError("AccessDeniedException", "GetSecretValue")

        def offline(**_):
            raise aws_stub.EndpointConnectionError()

        for answer, words in ((denied, "AccessDeniedException"), (offline, "EndpointConnectionError")):
            with self.subTest(words=words):
                with self.assertRaises(Failure) as caught:
                    self.fetch(answer)
                self.assertEqual(caught.exception.code, "SecretUnavailable")
                self.assertIn(words, caught.exception.message)


class ErrorCodes(unittest.TestCase):
    def test_kafka_error_names(self):
        import kafka.errors as Errors

        cases = {
            36: "TopicAlreadyExists",
            44: "PolicyViolation",
            40: "InvalidConfig",
            37: "InvalidPartitions",
            29: "TopicAuthorizationFailed",
            3: "UnknownTopicOrPartition",
            58: "SaslAuthenticationFailed",
        }
        for code, name in cases.items():
            with self.subTest(code=code):
                self.assertEqual(topic_admin.error_code(code), name)
                self.assertEqual(topic_admin.error_code(Errors.for_code(code)("x")), name)
        self.assertEqual(topic_admin.error_code(Errors.IncompatibleBrokerVersion("x")), "UnsupportedVersion")

    def test_failure_message_carries_the_brokers_words(self):
        failure = topic_admin.kafka_failure(44, "Partition count over the cluster limit", "CreatePartitions orders to 500")
        self.assertEqual(failure.code, "PolicyViolation")
        self.assertEqual(failure.message, "CreatePartitions orders to 500: Partition count over the cluster limit")
        self.assertTrue(topic_admin.kafka_failure(40, None, "x").message.startswith("x: "))

    def test_authorization_failures_name_the_iam_action(self):
        for what, action in (
            ("CreateTopics orders", "kafka-cluster:CreateTopic"),
            ("DescribeConfigs orders", "kafka-cluster:DescribeTopicDynamicConfiguration"),
            ("IncrementalAlterConfigs orders", "kafka-cluster:AlterTopicDynamicConfiguration"),
            ("CreatePartitions orders to 6", "kafka-cluster:AlterTopic"),
            ("DeleteTopics orders", "kafka-cluster:DeleteTopic"),
            ("Metadata orders", "kafka-cluster:DescribeTopic"),
        ):
            with self.subTest(what=what):
                failure = topic_admin.kafka_failure(29, "Authorization failed.", what)
                self.assertEqual(failure.code, "TopicAuthorizationFailed")
                self.assertIn(f"needs {action} on the topic", failure.message)


class ConfigsSetOnTopic(unittest.TestCase):
    def full_description(self, overrides=None, static=None):
        """The shape Kafka answers: every topic config, each with its source."""
        entries = [(name, "default", topic_admin.DEFAULT_CONFIG) for name in topic_admin.ALWAYS_DESCRIBED]
        entries += [("segment.bytes", "1073741824", topic_admin.DEFAULT_CONFIG)]
        for name, value in (static or {}).items():
            entries.append((name, value, 4))  # STATIC_BROKER_CONFIG
        entries = [e for e in entries if e[0] not in (overrides or {})]
        for name, value in (overrides or {}).items():
            entries.append((name, value, topic_admin.DYNAMIC_TOPIC_CONFIG))
        return entries

    def test_kafka_topic_overrides_only(self):
        entries = self.full_description({"retention.ms": "3600000"}, static={"min.insync.replicas": "2"})
        self.assertEqual(topic_admin.configs_set_on_topic(entries), {"retention.ms": "3600000"})

    def test_kafka_topic_without_overrides(self):
        self.assertEqual(topic_admin.configs_set_on_topic(self.full_description()), {})

    def test_partial_listing_with_broker_sources_is_kafka(self):
        entries = [("cleanup.policy", "delete", topic_admin.DEFAULT_CONFIG), ("min.insync.replicas", "2", 4)]
        self.assertEqual(topic_admin.configs_set_on_topic(entries), {})

    def test_broker_that_lists_only_the_topics_configs_as_defaults(self):
        # Tansu 0.6: only what the topic was given, every entry marked DEFAULT_CONFIG.
        entries = [("retention.ms", "86400000", topic_admin.DEFAULT_CONFIG), ("cleanup.policy", "compact", topic_admin.DEFAULT_CONFIG)]
        self.assertEqual(topic_admin.configs_set_on_topic(entries), {"retention.ms": "86400000", "cleanup.policy": "compact"})
        self.assertEqual(topic_admin.configs_set_on_topic([]), {})


class PlanEnsure(unittest.TestCase):
    def test_missing_topic_is_created_with_its_configs(self):
        plan = plan_ensure("orders", None, 3, {"retention.ms": "1000"})
        self.assertEqual(plan, EnsurePlan(create=True, partitions=3, set_configs={"retention.ms": "1000"}))
        self.assertEqual(plan.changed(), ["created"])

    def test_topic_as_declared_changes_nothing(self):
        plan = plan_ensure("orders", TopicState(3, {"retention.ms": "1000"}), 3, {"retention.ms": "1000"})
        self.assertEqual(plan, EnsurePlan())
        self.assertEqual(plan.changed(), [])

    def test_partitions_are_raised(self):
        plan = plan_ensure("orders", TopicState(3, {}), 6, {})
        self.assertEqual(plan.partitions, 6)
        self.assertEqual(plan.changed(), ["partitions"])

    def test_partitions_are_never_lowered(self):
        with self.assertRaises(Failure) as caught:
            plan_ensure("orders", TopicState(6, {}), 3, {})
        self.assertEqual(caught.exception.code, "InvalidPartitions")
        self.assertIn("orders has 6 partitions", caught.exception.message)
        self.assertIn("deletes its records", caught.exception.message)

    def test_configs_set_changed_and_reset_unlisted(self):
        current = TopicState(3, {"retention.ms": "1000", "cleanup.policy": "compact", "max.message.bytes": "2000000"})
        plan = plan_ensure("orders", current, 3, {"retention.ms": "2000", "cleanup.policy": "compact", "compression.type": "zstd"})
        self.assertIsNone(plan.partitions)
        self.assertEqual(plan.set_configs, {"retention.ms": "2000", "compression.type": "zstd"})
        self.assertEqual(plan.reset_configs, ("max.message.bytes",))
        self.assertEqual(
            plan.changed(), ["configs:compression.type", "configs:max.message.bytes", "configs:retention.ms"]
        )

    def test_partitions_and_configs_together(self):
        plan = plan_ensure("orders", TopicState(1, {"retention.ms": "1"}), 2, {})
        self.assertEqual(plan.changed(), ["partitions", "configs:retention.ms"])


class PartitionIncreaseRequests(unittest.TestCase):
    """CreatePartitions cannot be sent to Tansu: check the request and the handling of its answers."""

    class StubAdmin:
        def __init__(self, response):
            self.response = response
            self.calls = []

        def create_partitions(self, topic_partitions, timeout_ms=None, validate_only=False, raise_errors=True):
            self.calls.append((topic_partitions, timeout_ms, raise_errors))
            return self.response

    def response(self, code, message=None):
        result = CreatePartitionsResponse.CreatePartitionsTopicResult(name="orders", error_code=code, error_message=message)
        return CreatePartitionsResponse(throttle_time_ms=0, results=[result])

    def test_the_request_asks_for_the_new_total(self):
        admin = self.StubAdmin(self.response(0))
        topic_admin.Topics(admin, 5000).raise_partitions("orders", 6)
        [(topic_partitions, timeout_ms, raise_errors)] = admin.calls
        self.assertEqual((topic_partitions, timeout_ms, raise_errors), ({"orders": 6}, 5000, False))
        # What kafka-python puts on the wire for it: the total count, broker-chosen assignments.
        topics = KafkaAdminClient._process_create_partitions_input(topic_partitions)
        request = CreatePartitionsRequest(topics=topics, timeout_ms=timeout_ms, validate_only=False)
        [topic] = request.topics
        self.assertEqual((topic.name, topic.count, topic.assignments), ("orders", 6, None))
        self.assertTrue(request.encode(version=1))

    def test_broker_refusals_become_error_codes(self):
        for code, name in ((37, "InvalidPartitions"), (44, "PolicyViolation"), (29, "TopicAuthorizationFailed")):
            with self.subTest(name=name):
                topics = topic_admin.Topics(self.StubAdmin(self.response(code, "refused")), 5000)
                with self.assertRaises(Failure) as caught:
                    topics.raise_partitions("orders", 6)
                self.assertEqual(caught.exception.code, name)
                self.assertTrue(caught.exception.message.startswith("CreatePartitions orders to 6: refused"))


class ConfigAlterationAnswers(unittest.TestCase):
    def test_invalid_config_answer(self):
        answer = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(
            error_code=40, error_message="Invalid value abc for configuration retention.ms", resource_type=2, resource_name="orders"
        )
        sent = []

        class Canned(topic_admin.Topics):
            def _send(self, request):
                sent.append(request)
                return IncrementalAlterConfigsResponse(throttle_time_ms=0, responses=[answer])

        with self.assertRaises(Failure) as caught:
            Canned(None, 1000).alter_configs("orders", {"retention.ms": "abc"}, ("cleanup.policy",))
        self.assertEqual(caught.exception.code, "InvalidConfig")
        self.assertIn("Invalid value abc", caught.exception.message)
        [request] = sent
        [(resource_type, name, ops)] = request.resources
        self.assertEqual((resource_type, name), (2, "orders"))
        self.assertEqual(ops, [("retention.ms", 0, "abc"), ("cleanup.policy", 1, None)])


class Budget(unittest.TestCase):
    def test_budget(self):
        self.assertEqual(topic_admin.budget_ms({}, None), 20000)
        self.assertEqual(topic_admin.budget_ms({"KAFKA_TIMEOUT_MS": "5000"}, None), 5000)
        self.assertEqual(topic_admin.budget_ms({"KAFKA_TIMEOUT_MS": "x"}, 60000), 20000)
        self.assertEqual(topic_admin.budget_ms({}, 8000), 6000)  # the invocation's time wins
        self.assertEqual(topic_admin.budget_ms({}, 500), 1000)


# ---------------------------------------------------------------------------------------------
# Against a real broker
# ---------------------------------------------------------------------------------------------

BROKER = tansu_broker.Broker()


def setUpModule():
    # kafka-python leaves the sockets of failed connection attempts to the garbage collector.
    warnings.filterwarnings("ignore", category=ResourceWarning)
    BROKER.start()


def tearDownModule():
    BROKER.stop()


class Context:
    def __init__(self, remaining_ms=30000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self):
        return self.remaining_ms


class AgainstTansu(unittest.TestCase):
    """Through the Lambda handler, with the environment the local emulator gives it."""

    @classmethod
    def setUpClass(cls):
        cls.admin = KafkaAdminClient(bootstrap_servers=BROKER.bootstrap, request_timeout_ms=5000, bootstrap_timeout_ms=5000)

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()

    def invoke(self, action, topic, **extra):
        event = payload(action, topic, bootstrap_servers=BROKER.bootstrap, **extra)
        with mock.patch.dict(os.environ, PLAINTEXT_ENV):
            return topic_admin.handler(event, Context())

    def observed(self, topic):
        """The topic as a separate admin client sees it: (partitions, configs) or None."""
        [meta] = self.admin.describe_topics([topic])
        if meta["error_code"] == 3:
            return None
        configs = self.admin.describe_configs([ConfigResource("TOPIC", topic)], config_filter="all")["topic"][topic]
        return len(meta["partitions"]), {name: c["value"] for name, c in configs.items()}

    def test_describe_missing_topic(self):
        self.assertEqual(self.invoke("describe", "never-created"), {"exists": False})

    def test_ensure_creates_then_is_idempotent(self):
        configs = {"retention.ms": "86400000", "cleanup.policy": "compact"}
        reply = self.invoke("ensure", "created-once", partitions=3, configs=configs)
        self.assertEqual(reply, {"exists": True, "partitions": 3, "configs": dict(sorted(configs.items())), "changed": ["created"]})
        self.assertEqual(self.observed("created-once"), (3, configs))
        again = self.invoke("ensure", "created-once", partitions=3, configs=configs)
        self.assertEqual(again["changed"], [])
        self.assertEqual(self.invoke("describe", "created-once"), {"exists": True, "partitions": 3, "configs": dict(sorted(configs.items()))})

    def test_ensure_sets_and_resets_configs(self):
        self.invoke("ensure", "reconfigured", partitions=2, configs={"retention.ms": "1000", "cleanup.policy": "compact"})
        reply = self.invoke("ensure", "reconfigured", partitions=2, configs={"retention.ms": "2000"})
        self.assertEqual(reply["changed"], ["configs:cleanup.policy", "configs:retention.ms"])
        self.assertEqual(reply["configs"], {"retention.ms": "2000"})
        self.assertEqual(self.observed("reconfigured"), (2, {"retention.ms": "2000"}))

    def test_ensure_refuses_to_lower_partitions_and_changes_nothing(self):
        self.invoke("ensure", "six-partitions", partitions=6, configs={"retention.ms": "1000"})
        reply = self.invoke("ensure", "six-partitions", partitions=2, configs={})
        self.assertEqual(reply["error"]["code"], "InvalidPartitions")
        self.assertEqual(self.observed("six-partitions"), (6, {"retention.ms": "1000"}))

    def test_raising_partitions_on_a_broker_without_create_partitions(self):
        self.invoke("ensure", "grows", partitions=1, configs={})
        reply = self.invoke("ensure", "grows", partitions=4, configs={})
        self.assertEqual(reply["error"]["code"], "UnsupportedVersion")
        self.assertIn("does not support CreatePartitions", reply["error"]["message"])
        self.assertEqual(self.observed("grows"), (1, {}))

    def test_partial_change_is_said(self):
        # Configs are altered before partitions are raised: when raising fails, the answer says so.
        self.invoke("ensure", "half-done", partitions=1, configs={})
        reply = self.invoke("ensure", "half-done", partitions=2, configs={"retention.ms": "7"})
        self.assertEqual(reply["error"]["code"], "UnsupportedVersion")
        self.assertIn("configs were updated before this failure", reply["error"]["message"])
        self.assertEqual(self.observed("half-done"), (1, {"retention.ms": "7"}))

    def test_racing_create_ensures_again(self):
        # Another writer creates the topic between our describe and our create: Kafka answers
        # TopicAlreadyExists, and ensure converges from the topic as it now is.
        self.admin.create_topics({"raced": {"num_partitions": 2, "configs": {"retention.ms": "5"}}})
        stale = {"first": True}

        class StaleFirstRead(topic_admin.Topics):
            def describe(self, topic, deadline):
                if stale.pop("first", False):
                    return None
                return super().describe(topic, deadline)

        request = topic_admin.parse_request(payload("ensure", "raced", bootstrap_servers=BROKER.bootstrap, partitions=2, configs={}))
        with mock.patch.object(topic_admin, "Topics", StaleFirstRead):
            reply = topic_admin.run(request, PLAINTEXT_ENV)
        self.assertEqual(reply, {"exists": True, "partitions": 2, "configs": {}, "changed": ["configs:retention.ms"]})
        self.assertEqual(self.observed("raced"), (2, {}))

    def test_created_topic_slow_to_show_is_answered_as_created(self):
        # Kafka accepted the creation but its metadata does not list the topic within the wait.
        class SlowMetadata(topic_admin.Topics):
            def describe(self, topic, deadline):
                if getattr(self, "created", False):
                    return None
                return super().describe(topic, deadline)

            def create(self, topic, partitions, configs):
                super().create(topic, partitions, configs)
                self.created = True

        request = topic_admin.parse_request(
            payload("ensure", "slow-to-show", bootstrap_servers=BROKER.bootstrap, partitions=2, configs={"retention.ms": "9"})
        )
        with mock.patch.object(topic_admin, "Topics", SlowMetadata), mock.patch.object(topic_admin, "SETTLE_SECONDS", 0.3):
            reply = topic_admin.run(request, PLAINTEXT_ENV)
        self.assertEqual(reply, {"exists": True, "partitions": 2, "configs": {"retention.ms": "9"}, "changed": ["created"]})
        self.assertEqual(self.observed("slow-to-show"), (2, {"retention.ms": "9"}))

    def test_delete_waits_until_gone_and_missing_is_fine(self):
        self.invoke("ensure", "doomed", partitions=1, configs={})
        self.assertEqual(self.invoke("delete", "doomed"), {"exists": False})
        self.assertIsNone(self.observed("doomed"))
        self.assertEqual(self.invoke("delete", "doomed"), {"exists": False})

    def test_override_wins_over_iam(self):
        # security "iam" with KAFKA_SECURITY_OVERRIDE=plaintext reaches the plaintext broker.
        self.assertEqual(self.invoke("describe", "nothing-here"), {"exists": False})


class Unreachable(unittest.TestCase):
    def test_closed_port_answers_unreachable_quickly(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # bound, never listening: connections are refused
            event = payload("describe", "t", bootstrap_servers=f"127.0.0.1:{port}", security="plaintext")
            started = time.monotonic()
            with mock.patch.dict(os.environ, {"KAFKA_TIMEOUT_MS": "3000"}):
                reply = topic_admin.handler(event, Context())
            elapsed = time.monotonic() - started
        self.assertEqual(reply["error"]["code"], "Unreachable")
        self.assertIn(f"127.0.0.1:{port}", reply["error"]["message"])
        self.assertIn("port 9092", reply["error"]["message"])
        self.assertLess(elapsed, 5)

    def test_handshake_that_never_completes_is_cut_at_the_deadline_and_secrets_stay_out_of_logs(self):
        # SCRAM means TLS; Tansu's port speaks plaintext Kafka and never answers the TLS hello.
        # kafka-python does not bound a TLS handshake: the handler's own deadline must.
        request = topic_admin.parse_request(
            payload("describe", "t", bootstrap_servers=BROKER.bootstrap, security="scram", secret_arn="arn:aws:secretsmanager:r:1:secret:AmazonMSK_x")
        )
        password = "pa55-never-logged"
        outcome = {}

        def invoke():
            try:
                topic_admin.run(request, {"KAFKA_TIMEOUT_MS": "2000"}, fetch_secret=lambda arn: ("alice", password))
            except Failure as failure:
                outcome["failure"] = failure

        with self.assertLogs(level=logging.DEBUG) as logs:
            logging.getLogger("kafka").warning("capture started")  # assertLogs needs one record at least
            worker = threading.Thread(target=invoke, daemon=True)
            started = time.monotonic()
            worker.start()
            worker.join(timeout=10)  # a hang fails here instead of hanging the suite
            elapsed = time.monotonic() - started
        self.assertFalse(worker.is_alive(), "the handler did not give up at its deadline")
        failure = outcome["failure"]
        self.assertEqual(failure.code, "Unreachable")
        self.assertIn("within 2 s", failure.message)
        self.assertLess(elapsed, 4)
        self.assertNotIn(password, failure.message)
        for line in logs.output:
            self.assertNotIn(password, line)


if __name__ == "__main__":
    unittest.main()
