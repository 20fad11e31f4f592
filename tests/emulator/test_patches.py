"""Proves each patch in patches/ against a real launcher subprocess.

Run: .venv/emulator/bin/python -m unittest discover -s tests/emulator -v
One launcher (--port 0) serves the module, with lifecycle delays lowered
through the environment; every test uses its own resource names and clears
the faults it set.
"""

import base64
import http.client as httpclient
import io
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
REGION = "ap-northeast-1"
DELAYS = {
    "EMULATOR_MSK_CREATE_SECONDS": "0.6",
    "EMULATOR_MSK_DELETE_SECONDS": "0.4",
    "EMULATOR_ESM_SECONDS": "0.4",
    "EMULATOR_PIPE_SECONDS": "0.4",
    "EMULATOR_TAGGING_LAG_SECONDS": "0.5",
    # Off for the module (its shared role is used at once); IamPropagationTest turns
    # it on through the control endpoint.
    "EMULATOR_IAM_PROPAGATION_SECONDS": "0",
    # Off for the module (other tests create and use ids at once); the test of the
    # behaviour turns it on through the control endpoint.
    "EMULATOR_EC2_CONSISTENCY_SECONDS": "0",
    "EMULATOR_LAMBDA_VPC_SECONDS": "0.4",
    "EMULATOR_LAMBDA_ENI_LINGER_SECONDS": "0.8",
    "EMULATOR_VPC_ENDPOINT_SECONDS": "0.4",
    "EMULATOR_NAT_GATEWAY_SECONDS": "0.4",
}
PANDAS_LAYER = "arn:aws:lambda:ap-northeast-1:336392948345:layer:AWSSDKPandas-Python311:22"
launcher: subprocess.Popen | None = None
endpoint = ""


def setUpModule() -> None:
    global launcher, endpoint
    launcher = subprocess.Popen(
        [sys.executable, str(HERE / "launcher.py"), "--port", "0"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **DELAYS},
    )
    line = launcher.stdout.readline().strip()
    assert line.startswith("EMULATOR_READY http://"), f"launcher said {line!r}"
    endpoint = line.split(" ", 1)[1]
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    client("iam").create_role(RoleName="test-role", Path="/service-role/", AssumeRolePolicyDocument=json.dumps(trust))


def tearDownModule() -> None:
    launcher.terminate()
    assert launcher.wait(timeout=10) == 0, "launcher did not exit cleanly on SIGTERM"


def client(service: str, **config: object):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(**config) if config else None,
    )


def control(path: str, payload: object = None) -> dict:
    data = json.dumps(payload).encode() if payload is not None else b""
    req = urllib.request.Request(f"{endpoint}/_emulator/{path}", data=data, method="POST")
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


def faults() -> dict:
    with urllib.request.urlopen(f"{endpoint}/_emulator/faults") as resp:
        return json.load(resp)


def remaining_throttles() -> dict[str, int]:
    return {action: fault["remaining"] for action, fault in faults()["throttle"].items()}


def wait_for(read, want, timeout: float = 5.0):
    """Polls read() until it returns want; returns the sequence of values seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if not seen or seen[-1] != value:
            seen.append(value)
        if value == want:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"never reached {want!r}; saw {seen}")


def error_code(call) -> str:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError("call succeeded")


def function_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


ROLE = "arn:aws:iam::123456789012:role/service-role/test-role"


def make_function(name: str, **extra) -> dict:
    return client("lambda").create_function(
        FunctionName=name, Runtime="python3.11", Architectures=["x86_64"], Role=ROLE,
        Handler="handler.handler", Code={"ZipFile": function_zip()}, **extra,
    )


def kafka_bootstrap() -> str:
    with urllib.request.urlopen(f"{endpoint}/_emulator/kafka") as resp:
        return json.load(resp)["bootstrap"]


def make_cluster(name: str) -> str:
    return client("kafka").create_cluster_v2(
        ClusterName=name, Tags={"stack": name},
        Serverless={
            "VpcConfigs": [{"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}],
            "ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}},
        },
    )["ClusterArn"]


class EmulatorTest(unittest.TestCase):
    def tearDown(self) -> None:
        control("reset-faults")


class MskTest(EmulatorTest):
    def test_msk_creation_time_is_rfc3339_with_offset(self) -> None:
        kafka = client("kafka")
        raw = {}
        kafka.meta.events.register(
            "after-call.kafka.*", lambda http_response, model, **_: raw.__setitem__(model.name, http_response.content)
        )
        arn = make_cluster("ts-cluster")
        kafka.list_clusters_v2(ClusterNameFilter="ts-cluster")
        kafka.describe_cluster_v2(ClusterArn=arn)
        for op in ("ListClustersV2", "DescribeClusterV2"):
            body = json.loads(raw[op])
            info = body["clusterInfo"] if op == "DescribeClusterV2" else body["clusterInfoList"][0]
            self.assertRegex(info["creationTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", op)
            self.assertNotIn("activeOperationArn", info)
            self.assertNotIn("stateInfo", info)

    def test_msk_cluster_lifecycle_and_tags(self) -> None:
        kafka = client("kafka")
        arn = make_cluster("life-cluster")
        self.assertRegex(arn, r"^arn:aws:kafka:ap-northeast-1:\d{12}:cluster/life-cluster/[0-9a-f-]{36}-s1$")
        state = lambda: kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]["State"]
        self.assertEqual(wait_for(state, "ACTIVE"), ["CREATING", "ACTIVE"])
        listed = kafka.list_clusters_v2(ClusterNameFilter="life-cluster")["ClusterInfoList"]
        self.assertEqual(listed[0]["Tags"], {"stack": "life-cluster"})
        self.assertEqual(kafka.list_tags_for_resource(ResourceArn=arn)["Tags"], {"stack": "life-cluster"})
        self.assertEqual(kafka.delete_cluster(ClusterArn=arn)["State"], "DELETING")

        def gone() -> str:
            try:
                return state()
            except kafka.exceptions.NotFoundException:
                return "GONE"

        self.assertEqual(wait_for(gone, "GONE"), ["DELETING", "GONE"])
        self.assertEqual(kafka.list_clusters_v2(ClusterNameFilter="life-cluster")["ClusterInfoList"], [])

    def test_get_bootstrap_brokers_serverless(self) -> None:
        # The module's launcher runs the local broker: every cluster's IAM string is its address.
        kafka = client("kafka")
        arn = make_cluster("boot-cluster")
        first = kafka.get_bootstrap_brokers(ClusterArn=arn)
        self.assertEqual(first["BootstrapBrokerStringSaslIam"], kafka_bootstrap())
        self.assertRegex(first["BootstrapBrokerStringSaslIam"], r"^127\.\d+\.\d+\.\d+:9098$")
        self.assertNotIn("BootstrapBrokerString", first)
        self.assertNotIn("BootstrapBrokerStringTls", first)

    def test_get_bootstrap_brokers_provisioned(self) -> None:
        kafka = client("kafka")
        # CreateCluster (v1): moto's CreateClusterV2 drops a provisioned ClientAuthentication.
        arn = kafka.create_cluster(
            ClusterName="boot-prov", KafkaVersion="3.6.0", NumberOfBrokerNodes=2,
            BrokerNodeGroupInfo={"InstanceType": "kafka.m5.large", "ClientSubnets": ["subnet-1", "subnet-2"]},
            ClientAuthentication={"Sasl": {"Iam": {"Enabled": True}, "Scram": {"Enabled": True}}},
        )["ClusterArn"]
        brokers = kafka.get_bootstrap_brokers(ClusterArn=arn)
        brokers.pop("ResponseMetadata")
        self.assertEqual(
            brokers,
            {k: kafka_bootstrap() for k in
             ("BootstrapBrokerStringTls", "BootstrapBrokerStringSaslIam", "BootstrapBrokerStringSaslScram")},
        )

    def test_get_bootstrap_brokers_without_the_local_broker(self) -> None:
        # EMULATOR_KAFKA_BROKER=0: no broker, and the strings AWS would answer, deterministic.
        own = subprocess.Popen(
            [sys.executable, str(HERE / "launcher.py"), "--port", "0"],
            stdout=subprocess.PIPE, text=True, env={**os.environ, **DELAYS, "EMULATOR_KAFKA_BROKER": "0"},
        )
        try:
            url = own.stdout.readline().strip().split(" ", 1)[1]
            with urllib.request.urlopen(f"{url}/_emulator/kafka") as resp:
                self.assertEqual(json.load(resp), {"bootstrap": None})
            kafka = boto3.client("kafka", endpoint_url=url, region_name=REGION,
                                 aws_access_key_id="test", aws_secret_access_key="test")
            arn = kafka.create_cluster_v2(ClusterName="boot-off", Serverless={
                "VpcConfigs": [{"SubnetIds": ["subnet-1", "subnet-2"]}],
                "ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}})["ClusterArn"]
            first = kafka.get_bootstrap_brokers(ClusterArn=arn)
            second = kafka.get_bootstrap_brokers(ClusterArn=arn)
            self.assertRegex(
                first["BootstrapBrokerStringSaslIam"],
                r"^boot-[0-9a-f]{8}\.c2\.kafka-serverless\.ap-northeast-1\.amazonaws\.com:9098$",
            )
            self.assertEqual(first["BootstrapBrokerStringSaslIam"], second["BootstrapBrokerStringSaslIam"])
        finally:
            own.terminate()
            self.assertEqual(own.wait(timeout=10), 0)
            own.stdout.close()


class LambdaFunctionTest(EmulatorTest):
    def test_dead_letter_config_is_stored_and_returned(self) -> None:
        lam = client("lambda")
        dlq = "arn:aws:sqs:ap-northeast-1:123456789012:dlq-a"
        make_function("dlq-fn", DeadLetterConfig={"TargetArn": dlq}, Timeout=300, MemorySize=512)
        self.assertEqual(lam.get_function(FunctionName="dlq-fn")["Configuration"]["DeadLetterConfig"], {"TargetArn": dlq})
        listed = [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == "dlq-fn"]
        self.assertEqual(listed[0]["DeadLetterConfig"], {"TargetArn": dlq})
        other = "arn:aws:sqs:ap-northeast-1:123456789012:dlq-b"
        lam.update_function_configuration(FunctionName="dlq-fn", DeadLetterConfig={"TargetArn": other})
        self.assertEqual(lam.get_function_configuration(FunctionName="dlq-fn")["DeadLetterConfig"]["TargetArn"], other)
        lam.update_function_configuration(FunctionName="dlq-fn", DeadLetterConfig={"TargetArn": ""})
        self.assertNotIn("DeadLetterConfig", lam.get_function_configuration(FunctionName="dlq-fn"))

    def test_layers_of_other_accounts_are_accepted(self) -> None:
        lam = client("lambda")
        made = make_function("layer-fn", Layers=[PANDAS_LAYER])
        self.assertEqual([l["Arn"] for l in made["Layers"]], [PANDAS_LAYER])
        lam.update_function_configuration(FunctionName="layer-fn", Layers=[PANDAS_LAYER])
        self.assertEqual([l["Arn"] for l in lam.get_function(FunctionName="layer-fn")["Configuration"]["Layers"]], [PANDAS_LAYER])
        # A missing layer of the caller's own account is still an error, as on AWS.
        own = "arn:aws:lambda:ap-northeast-1:123456789012:layer:missing:1"
        self.assertEqual(error_code(lambda: make_function("layer-fn-2", Layers=[own])), "ResourceNotFoundException")


    def test_event_invoke_config_put_replaces(self) -> None:
        lam = client("lambda")
        make_function("invoke-fn")
        lam.put_function_event_invoke_config(FunctionName="invoke-fn", MaximumRetryAttempts=2, MaximumEventAgeInSeconds=300)
        lam.put_function_event_invoke_config(FunctionName="invoke-fn", MaximumRetryAttempts=0, MaximumEventAgeInSeconds=60)
        got = lam.get_function_event_invoke_config(FunctionName="invoke-fn")
        self.assertEqual((got["MaximumRetryAttempts"], got["MaximumEventAgeInSeconds"]), (0, 60))

    def test_tracing_config_update_is_kept(self) -> None:
        lam = client("lambda")
        made = make_function("trace-fn", TracingConfig={"Mode": "Active"})
        self.assertEqual(made["TracingConfig"], {"Mode": "Active"})
        lam.update_function_configuration(FunctionName="trace-fn", TracingConfig={"Mode": "PassThrough"})
        self.assertEqual(lam.get_function(FunctionName="trace-fn")["Configuration"]["TracingConfig"], {"Mode": "PassThrough"})
        lam.update_function_configuration(FunctionName="trace-fn", TracingConfig={"Mode": "Active"})
        listed = [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == "trace-fn"]
        self.assertEqual(listed[0]["TracingConfig"], {"Mode": "Active"})
        lam.update_function_configuration(FunctionName="trace-fn", Timeout=30)  # no TracingConfig: kept
        self.assertEqual(lam.get_function_configuration(FunctionName="trace-fn")["TracingConfig"], {"Mode": "Active"})
        self.assertEqual(error_code(lambda: lam.update_function_configuration(
            FunctionName="trace-fn", TracingConfig={"Mode": "On"})), "ValidationException")

    def test_reserved_concurrency_zero_is_returned_and_the_account_limit_holds(self) -> None:
        lam = client("lambda")
        make_function("conc-fn")
        self.assertNotIn("Concurrency", lam.get_function(FunctionName="conc-fn"))
        lam.put_function_concurrency(FunctionName="conc-fn", ReservedConcurrentExecutions=0)
        # 0 throttles every invocation: a reservation, which GetFunction reports.
        self.assertEqual(lam.get_function(FunctionName="conc-fn")["Concurrency"], {"ReservedConcurrentExecutions": 0})
        lam.put_function_concurrency(FunctionName="conc-fn", ReservedConcurrentExecutions=5)
        self.assertEqual(lam.get_function(FunctionName="conc-fn")["Concurrency"], {"ReservedConcurrentExecutions": 5})
        # The default account limit is 1000, of which 100 stay unreserved.
        try:
            lam.put_function_concurrency(FunctionName="conc-fn", ReservedConcurrentExecutions=901)
            raise AssertionError("a reservation above limit - 100 was accepted")
        except ClientError as error:
            self.assertEqual(error.response["Error"]["Code"], "InvalidParameterValueException")
            self.assertIn("below its minimum value of [100]", error.response["Error"]["Message"])
        lam.put_function_concurrency(FunctionName="conc-fn", ReservedConcurrentExecutions=900)
        lam.delete_function_concurrency(FunctionName="conc-fn")
        self.assertNotIn("Concurrency", lam.get_function(FunctionName="conc-fn"))


class EventSourceMappingTest(EmulatorTest):
    def test_kafka_esm_from_msk_lifecycle_and_fields(self) -> None:
        lam = client("lambda")
        fn = make_function("esm-msk-fn")["FunctionArn"]
        cluster = make_cluster("esm-cluster")
        created = lam.create_event_source_mapping(
            FunctionName="esm-msk-fn", EventSourceArn=cluster, Topics=["orders"], StartingPosition="LATEST",
            MaximumBatchingWindowInSeconds=5, AmazonManagedKafkaEventSourceConfig={"ConsumerGroupId": "grp"},
            SourceAccessConfigurations=[{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"}],
            DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:ap-northeast-1:123456789012:dlq"}},
            Tags={"stack": "esm"},
        )
        uuid = created["UUID"]
        self.assertEqual(created["State"], "Creating")
        self.assertEqual(created["EventSourceMappingArn"], f"arn:aws:lambda:ap-northeast-1:123456789012:event-source-mapping:{uuid}")
        self.assertEqual((created["FunctionArn"], created["EventSourceArn"], created["Topics"]), (fn, cluster, ["orders"]))
        self.assertEqual((created["BatchSize"], created["MaximumBatchingWindowInSeconds"], created["StartingPosition"]), (100, 5, "LATEST"))
        self.assertEqual(created["AmazonManagedKafkaEventSourceConfig"], {"ConsumerGroupId": "grp"})
        self.assertEqual(created["SourceAccessConfigurations"], [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"}])
        self.assertEqual(created["DestinationConfig"]["OnFailure"]["Destination"], "arn:aws:sqs:ap-northeast-1:123456789012:dlq")
        state = lambda: lam.get_event_source_mapping(UUID=uuid)["State"]
        self.assertEqual(wait_for(state, "Enabled"), ["Creating", "Enabled"])
        got = lam.get_event_source_mapping(UUID=uuid)
        self.assertEqual((got["StateTransitionReason"], got["LastProcessingResult"]), ("USER_INITIATED", "No records processed"))

        for by in ({"FunctionName": "esm-msk-fn"}, {"FunctionName": fn}, {"EventSourceArn": cluster}):
            self.assertEqual([m["UUID"] for m in lam.list_event_source_mappings(**by)["EventSourceMappings"]], [uuid], by)
        esm_arn = got["EventSourceMappingArn"]
        self.assertEqual(lam.list_tags(Resource=esm_arn)["Tags"], {"stack": "esm"})
        lam.tag_resource(Resource=esm_arn, Tags={"team": "data"})
        lam.untag_resource(Resource=esm_arn, TagKeys=["stack"])
        self.assertEqual(lam.list_tags(Resource=esm_arn)["Tags"], {"team": "data"})

        updated = lam.update_event_source_mapping(UUID=uuid, BatchSize=500, MaximumBatchingWindowInSeconds=10)
        self.assertEqual((updated["State"], updated["BatchSize"]), ("Updating", 500))
        self.assertEqual(error_code(lambda: lam.update_event_source_mapping(UUID=uuid, BatchSize=10)), "ResourceInUseException")
        wait_for(state, "Enabled")
        self.assertEqual(error_code(lambda: lam.update_event_source_mapping(UUID=uuid, BatchSize=10001)), "InvalidParameterValueException")
        self.assertEqual(error_code(lambda: lam.update_event_source_mapping(
            UUID=uuid, AmazonManagedKafkaEventSourceConfig={"ConsumerGroupId": "other"})), "InvalidParameterValueException")
        self.assertEqual(self.raw_update(uuid, {"Topics": ["payments"]})[0], 400)
        self.assertEqual(lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"], "Disabling")
        self.assertEqual(wait_for(state, "Disabled"), ["Disabling", "Disabled"])

        self.assertEqual(lam.delete_event_source_mapping(UUID=uuid)["State"], "Deleting")

        def gone() -> str:
            try:
                return state()
            except lam.exceptions.ResourceNotFoundException:
                return "Gone"

        self.assertEqual(wait_for(gone, "Gone"), ["Deleting", "Gone"])

    def raw_update(self, uuid: str, body: dict) -> tuple[int, dict]:
        """UpdateEventSourceMapping with members the SDKs cannot send."""
        req = urllib.request.Request(
            f"{endpoint}/2015-03-31/event-source-mappings/{uuid}", data=json.dumps(body).encode(), method="PUT",
            headers={"Content-Type": "application/json", "Authorization":
                     "AWS4-HMAC-SHA256 Credential=test/20260101/ap-northeast-1/lambda/aws4_request, SignedHeaders=host, Signature=x"},
        )
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def test_kafka_esm_self_managed_and_validation(self) -> None:
        lam = client("lambda")
        make_function("esm-smk-fn")
        source = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1.example.com:9092", "b-2.example.com:9092"]}}
        created = lam.create_event_source_mapping(
            FunctionName="esm-smk-fn", SelfManagedEventSource=source, Topics=["clicks"], StartingPosition="TRIM_HORIZON",
            Enabled=False, SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "clicks-grp"},
            SourceAccessConfigurations=[{"Type": "SASL_SCRAM_512_AUTH", "URI": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:kafka"}],
        )
        self.assertNotIn("EventSourceArn", created)
        self.assertEqual(created["SelfManagedEventSource"], source)
        self.assertEqual(created["SelfManagedKafkaEventSourceConfig"], {"ConsumerGroupId": "clicks-grp"})
        state = lambda: lam.get_event_source_mapping(UUID=created["UUID"])["State"]
        self.assertEqual(wait_for(state, "Disabled"), ["Creating", "Disabled"])
        again = lambda: lam.create_event_source_mapping(
            FunctionName="esm-smk-fn", SelfManagedEventSource=source, Topics=["clicks"], StartingPosition="TRIM_HORIZON")
        self.assertEqual(error_code(again), "ResourceConflictException")
        too_big = lambda: lam.create_event_source_mapping(
            FunctionName="esm-smk-fn", SelfManagedEventSource=source, Topics=["other"], StartingPosition="LATEST", BatchSize=10001)
        self.assertEqual(error_code(too_big), "InvalidParameterValueException")
        no_position = lambda: lam.create_event_source_mapping(
            FunctionName="esm-smk-fn", SelfManagedEventSource=source, Topics=["other"])
        self.assertEqual(error_code(no_position), "InvalidParameterValueException")


class Ec2Test(EmulatorTest):
    def test_nat_gateway_client_token_is_idempotent(self) -> None:
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        tags = [{"ResourceType": "natgateway", "Tags": [{"Key": "Name", "Value": "nat"}]}]
        create = lambda: ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip, ClientToken="nat-token-1", TagSpecifications=tags)
        first, second = create(), create()
        self.assertEqual(first["NatGateway"]["NatGatewayId"], second["NatGateway"]["NatGatewayId"])
        self.assertEqual(second["ClientToken"], "nat-token-1")
        listed = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0]["Tags"], [{"Key": "Name", "Value": "nat"}])
        other_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        mismatch = lambda: ec2.create_nat_gateway(SubnetId=subnet, AllocationId=other_eip, ClientToken="nat-token-1")
        self.assertEqual(error_code(mismatch), "IdempotentParameterMismatch")

    def test_nat_gateway_is_pending_then_deleting_and_frees_its_address_when_deleted(self) -> None:
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.3.1.0/24")["Subnet"]["SubnetId"]
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        made = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]
        first = made["NatGatewayId"]
        self.assertEqual(made["State"], "pending")

        def state(nat_id: str) -> str:
            return ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"]

        self.assertEqual(wait_for(lambda: state(first), "available"), ["pending", "available"])
        ec2.delete_nat_gateway(NatGatewayId=first)
        self.assertEqual(state(first), "deleting")
        # Until `deleted`, the address stays associated and the interface stays in the subnet.
        address = ec2.describe_addresses(AllocationIds=[eip])["Addresses"][0]
        self.assertIn("AssociationId", address)
        self.assertEqual(error_code(lambda: ec2.delete_subnet(SubnetId=subnet)), "DependencyViolation")
        ec2.delete_nat_gateway(NatGatewayId=first)  # a repeated delete is accepted
        self.assertEqual(wait_for(lambda: state(first), "deleted"), ["deleting", "deleted"])
        address = ec2.describe_addresses(AllocationIds=[eip])["Addresses"][0]
        self.assertNotIn("AssociationId", address)
        # The address can carry a replacement gateway, and once that is gone the subnet can go.
        second = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"]
        self.assertNotEqual(first, second)
        ec2.delete_nat_gateway(NatGatewayId=second)
        wait_for(lambda: state(second), "deleted")
        ec2.delete_subnet(SubnetId=subnet)
        self.assertEqual(error_code(lambda: ec2.delete_nat_gateway(NatGatewayId="nat-0123456789abcdef0")),
                         "NatGatewayNotFound")

    def test_network_interfaces_block_subnet_and_group_deletion(self) -> None:
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.4.1.0/24")["Subnet"]["SubnetId"]
        sg = ec2.create_security_group(GroupName="poller", Description="poller", VpcId=vpc)["GroupId"]
        eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg], Description="AWS Lambda VPC ENI")
        eni_id = eni["NetworkInterface"]["NetworkInterfaceId"]
        self.assertEqual(error_code(lambda: ec2.delete_subnet(SubnetId=subnet)), "DependencyViolation")
        self.assertEqual(error_code(lambda: ec2.delete_security_group(GroupId=sg)), "DependencyViolation")
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)
        ec2.delete_security_group(GroupId=sg)
        ec2.delete_subnet(SubnetId=subnet)

    def test_group_referenced_by_another_groups_rule_cannot_be_deleted(self) -> None:
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
        client_sg = ec2.create_security_group(GroupName="client", Description="client", VpcId=vpc)["GroupId"]
        cluster_sg = ec2.create_security_group(GroupName="cluster", Description="cluster", VpcId=vpc)["GroupId"]
        own = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": cluster_sg}]}
        ec2.authorize_security_group_ingress(GroupId=cluster_sg, IpPermissions=[own])
        to_cluster = {"IpProtocol": "tcp", "FromPort": 9098, "ToPort": 9098, "UserIdGroupPairs": [{"GroupId": cluster_sg}]}
        ec2.authorize_security_group_egress(GroupId=client_sg, IpPermissions=[to_cluster])
        from_client = {"IpProtocol": "tcp", "FromPort": 9098, "ToPort": 9098, "UserIdGroupPairs": [{"GroupId": client_sg}]}
        ec2.authorize_security_group_ingress(GroupId=cluster_sg, IpPermissions=[from_client])
        # Each is named by the other's rules (egress and ingress): neither can go.
        with self.assertRaises(ClientError) as raised:
            ec2.delete_security_group(GroupId=client_sg)
        self.assertEqual(raised.exception.response["Error"]["Code"], "DependencyViolation")
        self.assertEqual(raised.exception.response["Error"]["Message"], f"resource {client_sg} has a dependent object")
        self.assertEqual(error_code(lambda: ec2.delete_security_group(GroupId=cluster_sg)), "DependencyViolation")
        ec2.revoke_security_group_ingress(GroupId=cluster_sg, IpPermissions=[from_client])
        ec2.delete_security_group(GroupId=client_sg)  # its own egress rule does not hold it
        # The rule naming cluster_sg went with client_sg; its self rule does not block it.
        ec2.delete_security_group(GroupId=cluster_sg)
        self.assertEqual(error_code(lambda: ec2.describe_security_groups(GroupIds=[cluster_sg])),
                         "InvalidGroup.NotFound")

    def test_security_group_rules_keep_all_permissions_and_descriptions(self) -> None:
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
        sg = ec2.create_security_group(GroupName="msk", Description="msk", VpcId=vpc)["GroupId"]
        out = ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 9098, "ToPort": 9098, "UserIdGroupPairs": [{"GroupId": sg, "Description": "self"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.2.0.0/16", "Description": "vpc"}]},
        ])
        self.assertEqual(sorted(r["Description"] for r in out["SecurityGroupRules"]), ["self", "vpc"])
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
        ingress = {r.get("Description") for r in rules if not r["IsEgress"]}
        self.assertEqual(ingress, {"self", "vpc"})

    def test_fresh_ec2_ids_are_not_found_for_a_moment(self) -> None:
        control("faults", {"delays": {"ec2_consistency": 1.0}})
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
        tag = [{"Key": "k", "Value": "v"}]
        self.assertEqual(error_code(lambda: ec2.describe_vpcs(VpcIds=[vpc])), "InvalidVpcID.NotFound")
        self.assertEqual(error_code(lambda: ec2.create_tags(Resources=[vpc], Tags=tag)), "InvalidVpcID.NotFound")
        self.assertEqual(error_code(lambda: ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})),
                         "InvalidVpcID.NotFound")
        self.assertEqual(error_code(lambda: ec2.create_subnet(VpcId=vpc, CidrBlock="10.5.1.0/24")),
                         "InvalidVpcID.NotFound")
        # A filter naming the fresh id is no error.
        ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
        time.sleep(1.05)
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.5.1.0/24")["Subnet"]["SubnetId"]
        sg = ec2.create_security_group(GroupName="fresh", Description="fresh", VpcId=vpc)["GroupId"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        for call, code in [
            (lambda: ec2.describe_subnets(SubnetIds=[subnet]), "InvalidSubnetID.NotFound"),
            (lambda: ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]),
             "InvalidGroup.NotFound"),
            (lambda: ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc), "InvalidInternetGatewayID.NotFound"),
            (lambda: ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet), "InvalidRouteTableID.NotFound"),
            (lambda: ec2.describe_addresses(AllocationIds=[eip]), "InvalidAllocationID.NotFound"),
        ]:
            self.assertEqual(error_code(call), code)
        time.sleep(1.05)
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
        nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"]
        self.assertEqual(error_code(lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat])), "NatGatewayNotFound")
        # Deletes are not delayed: mskctl reads their NotFound as "already gone".
        ec2.delete_nat_gateway(NatGatewayId=nat)
        self.assertEqual(ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["VpcId"], vpc)


class VpcTest(EmulatorTest):
    def setUp(self) -> None:
        # Windows long enough for the few calls each phase makes, even on a loaded machine (the
        # module's 0.4 s and 0.8 s flaked at a load average of 6 on 2 cores); reset in tearDown.
        control("faults", {"delays": {"lambda_vpc": 1.5, "lambda_eni_linger": 3.0, "vpc_endpoint": 1.5}})

    def network(self, cidr: str) -> tuple[str, list[str], str]:
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        base = cidr.split(".")[:2]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=".".join(base + [str(i), "0/24"]),
                              AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
            for i, zone in ((1, "a"), (2, "c"))
        ]
        sg = ec2.create_security_group(GroupName=f"g-{vpc}", Description="g", VpcId=vpc)["GroupId"]
        return vpc, subnets, sg

    def lambda_enis(self, name: str) -> list[dict]:
        return [e for e in client("ec2").describe_network_interfaces()["NetworkInterfaces"]
                if e["Description"].startswith(f"AWS Lambda VPC ENI-{name}-")]

    def test_vpc_function_pending_enis_and_lingering(self) -> None:
        ec2, lam = client("ec2"), client("lambda")
        vpc, (a, c), sg = self.network("10.30.0.0/16")
        made = make_function("vpc-fn", VpcConfig={"SubnetIds": [a], "SecurityGroupIds": [sg]})
        self.assertEqual(made["State"], "Pending")
        self.assertEqual(made["StateReasonCode"], "Creating")
        self.assertEqual(made["VpcConfig"]["VpcId"], vpc)
        enis = self.lambda_enis("vpc-fn")
        self.assertEqual([(e["SubnetId"], e["InterfaceType"], e["RequesterManaged"], [g["GroupId"] for g in e["Groups"]])
                          for e in enis], [(a, "lambda", True, [sg])])
        # Updates are refused while Pending, as on AWS.
        self.assertEqual(error_code(lambda: lam.update_function_configuration(FunctionName="vpc-fn", Timeout=5)),
                         "ResourceConflictException")
        wait_for(lambda: lam.get_function_configuration(FunctionName="vpc-fn")["State"], "Active")
        # Moving to another subnet: InProgress while the new interface is attached; the old one lingers.
        moved = lam.update_function_configuration(FunctionName="vpc-fn", VpcConfig={"SubnetIds": [c], "SecurityGroupIds": [sg]})
        self.assertEqual(moved["LastUpdateStatus"], "InProgress")
        self.assertEqual(sorted(e["SubnetId"] for e in self.lambda_enis("vpc-fn")), sorted([a, c]))
        self.assertEqual(error_code(lambda: ec2.delete_subnet(SubnetId=a)), "DependencyViolation")
        wait_for(lambda: lam.get_function_configuration(FunctionName="vpc-fn")["LastUpdateStatus"], "Successful")
        wait_for(lambda: [e["SubnetId"] for e in self.lambda_enis("vpc-fn")], [c])
        ec2.delete_subnet(SubnetId=a)
        # Leaving the VPC (empty lists, as AWS allows) and deleting: the interface lingers, then goes.
        left = lam.update_function_configuration(FunctionName="vpc-fn", VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
        self.assertEqual(left["VpcConfig"]["SubnetIds"], [])
        lam.delete_function(FunctionName="vpc-fn")
        self.assertEqual(error_code(lambda: ec2.delete_security_group(GroupId=sg)), "DependencyViolation")
        self.assertEqual(error_code(lambda: ec2.delete_subnet(SubnetId=c)), "DependencyViolation")
        wait_for(lambda: len(self.lambda_enis("vpc-fn")), 0)
        ec2.delete_security_group(GroupId=sg)
        ec2.delete_subnet(SubnetId=c)

    def test_vpc_function_validation_and_eni_permissions_propagation(self) -> None:
        iam, lam = client("iam"), client("lambda")
        vpc, (a, _), sg = self.network("10.31.0.0/16")
        with self.assertRaises(ClientError) as bad:
            make_function("vpc-bad", VpcConfig={"SubnetIds": ["subnet-0000000000"], "SecurityGroupIds": [sg]})
        self.assertIn("InvalidSubnetID.NotFound", bad.exception.response["Error"]["Message"])
        control("faults", {"delays": {"iam": 3.0}})
        iam.attach_role_policy(RoleName="test-role",
                               PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
        with self.assertRaises(ClientError) as denied:
            make_function("vpc-new", VpcConfig={"SubnetIds": [a], "SecurityGroupIds": [sg]})
        self.assertIn("CreateNetworkInterface", denied.exception.response["Error"]["Message"])
        make_function("plain-new")  # not in a VPC: no ENI permissions needed
        control("reset-faults")

    def test_vpc_endpoint_lifecycle_and_modify(self) -> None:
        ec2 = client("ec2")
        vpc, (a, c), sg = self.network("10.32.0.0/16")
        rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        rt2 = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]

        def state(vpce: str) -> str:
            return ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["State"]

        # Private DNS needs both DNS attributes of the VPC (moto's new VPCs lack hostnames).
        with self.assertRaises(ClientError) as no_dns:
            ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.sts", VpcEndpointType="Interface",
                                    SubnetIds=[a], SecurityGroupIds=[sg])
        self.assertIn("enableDnsHostnames", no_dns.exception.response["Error"]["Message"])
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        # Gateway endpoint without VpcEndpointType: Gateway, as on AWS; routes follow the tables.
        gw = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", RouteTableIds=[rt])["VpcEndpoint"]
        self.assertEqual((gw["VpcEndpointType"], gw["State"]), ("Gateway", "pending"))
        wait_for(lambda: state(gw["VpcEndpointId"]), "available")
        ec2.modify_vpc_endpoint(VpcEndpointId=gw["VpcEndpointId"], AddRouteTableIds=[rt2], RemoveRouteTableIds=[rt])

        def endpoint_routes(table: str) -> list[str]:
            routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
            return [r["GatewayId"] for r in routes if r.get("DestinationPrefixListId")]

        self.assertEqual((endpoint_routes(rt), endpoint_routes(rt2)), ([], [gw["VpcEndpointId"]]))
        # Interface endpoint: requester-managed interfaces in its groups, modified in place.
        ep = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.sts", VpcEndpointType="Interface",
                                     SubnetIds=[a], SecurityGroupIds=[sg])["VpcEndpoint"]
        vpce = ep["VpcEndpointId"]
        wait_for(lambda: state(vpce), "available")
        enis = ec2.describe_network_interfaces(NetworkInterfaceIds=ep["NetworkInterfaceIds"])["NetworkInterfaces"]
        self.assertEqual([(e["InterfaceType"], e["RequesterManaged"], e["Groups"][0]["GroupId"]) for e in enis],
                         [("vpc_endpoint", True, sg)])
        ec2.modify_vpc_endpoint(VpcEndpointId=vpce, AddSubnetIds=[c], RemoveSubnetIds=[a], PrivateDnsEnabled=False)
        self.assertEqual(state(vpce), "pending")
        wait_for(lambda: state(vpce), "available")
        got = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]
        self.assertEqual((got["SubnetIds"], got["PrivateDnsEnabled"]), ([c], False))
        subnets = [e["SubnetId"] for e in ec2.describe_network_interfaces(NetworkInterfaceIds=got["NetworkInterfaceIds"])["NetworkInterfaces"]]
        self.assertEqual(subnets, [c])
        ec2.delete_subnet(SubnetId=a)  # its interface went with the modify
        # Deletion: deleting -> deleted; the interface blocks the subnet until then.
        ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce, gw["VpcEndpointId"]])
        self.assertEqual(state(vpce), "deleting")
        self.assertEqual(error_code(lambda: ec2.delete_subnet(SubnetId=c)), "DependencyViolation")
        wait_for(lambda: state(vpce), "deleted")
        wait_for(lambda: state(gw["VpcEndpointId"]), "deleted")
        self.assertEqual(endpoint_routes(rt2), [])
        ec2.delete_subnet(SubnetId=c)


class PipeTest(EmulatorTest):
    def make_pipe(self, name: str, **extra) -> dict:
        return client("pipes").create_pipe(
            Name=name, RoleArn=ROLE, Target="arn:aws:lambda:ap-northeast-1:123456789012:function:target",
            Source="arn:aws:kafka:ap-northeast-1:123456789012:cluster/pipe-src/0e2f1c7a-1111-2222-3333-444455556666-s1",
            SourceParameters={"ManagedStreamingKafkaParameters": {
                "TopicName": "orders", "StartingPosition": "TRIM_HORIZON", "ConsumerGroupID": "pipe-grp",
                "BatchSize": 10, "MaximumBatchingWindowInSeconds": 1}},
            TargetParameters={"LambdaFunctionParameters": {"InvocationType": "REQUEST_RESPONSE"}},
            Tags={"stack": name}, **extra,
        )

    def test_pipe_lifecycle_update_and_delete(self) -> None:
        pipes = client("pipes")
        self.assertEqual(self.make_pipe("pipe-life")["CurrentState"], "CREATING")
        state = lambda: pipes.describe_pipe(Name="pipe-life")["CurrentState"]
        self.assertEqual(wait_for(state, "RUNNING"), ["CREATING", "RUNNING"])
        self.assertEqual(error_code(lambda: self.make_pipe("pipe-life")), "ConflictException")
        pipes.update_pipe(
            Name="pipe-life", RoleArn=ROLE, DesiredState="STOPPED",
            SourceParameters={"ManagedStreamingKafkaParameters": {"BatchSize": 50, "MaximumBatchingWindowInSeconds": 3}},
            TargetParameters={"LambdaFunctionParameters": {"InvocationType": "FIRE_AND_FORGET"}},
        )
        self.assertEqual(wait_for(state, "STOPPED"), ["UPDATING", "STOPPED"])
        described = pipes.describe_pipe(Name="pipe-life")
        self.assertEqual(described["SourceParameters"]["ManagedStreamingKafkaParameters"], {
            "TopicName": "orders", "StartingPosition": "TRIM_HORIZON", "ConsumerGroupID": "pipe-grp",
            "BatchSize": 50, "MaximumBatchingWindowInSeconds": 3})
        self.assertEqual(described["TargetParameters"]["LambdaFunctionParameters"]["InvocationType"], "FIRE_AND_FORGET")
        self.assertEqual(pipes.list_tags_for_resource(resourceArn=described["Arn"])["tags"], {"stack": "pipe-life"})
        pipes.start_pipe(Name="pipe-life")
        self.assertEqual(wait_for(state, "RUNNING"), ["STARTING", "RUNNING"])
        self.assertEqual(pipes.delete_pipe(Name="pipe-life")["CurrentState"], "DELETING")

        def gone() -> str:
            try:
                return state()
            except pipes.exceptions.NotFoundException:
                return "GONE"

        self.assertEqual(wait_for(gone, "GONE"), ["DELETING", "GONE"])

    def test_pipe_created_stopped_ends_stopped(self) -> None:
        self.make_pipe("pipe-stopped", DesiredState="STOPPED")
        state = lambda: client("pipes").describe_pipe(Name="pipe-stopped")["CurrentState"]
        self.assertEqual(wait_for(state, "STOPPED"), ["CREATING", "STOPPED"])


class IamConcurrentModificationTest(EmulatorTest):
    def test_concurrent_changes_of_one_role_are_refused_one_after_another_are_not(self) -> None:
        # IAM serialises changes to one role: overlapping ones answer ConcurrentModification.
        control("faults", {"delays": {"iam_mutation": 1.0}})
        iam = client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "lambda.amazonaws.com"}}]}
        for name in ("busy-role", "other-role"):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]})
        arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        results: dict[str, str] = {}

        def run(key, call):
            try:
                call()
                results[key] = "ok"
            except ClientError as error:
                results[key] = error.response["Error"]["Code"]

        import threading
        calls = [
            threading.Thread(target=run, args=("put", lambda: iam.put_role_policy(RoleName="busy-role", PolicyName="p", PolicyDocument=doc))),
            threading.Thread(target=run, args=("attach", lambda: (time.sleep(0.3), iam.attach_role_policy(RoleName="busy-role", PolicyArn=arn)))),
            threading.Thread(target=run, args=("other", lambda: (time.sleep(0.3), iam.put_role_policy(RoleName="other-role", PolicyName="p", PolicyDocument=doc)))),
        ]
        for t in calls:
            t.start()
        for t in calls:
            t.join()
        self.assertEqual(results, {"put": "ok", "attach": "ConcurrentModification", "other": "ok"})
        # One after another: no conflict.
        iam.attach_role_policy(RoleName="busy-role", PolicyArn=arn)
        iam.delete_role_policy(RoleName="busy-role", PolicyName="p")


class IamPropagationTest(EmulatorTest):
    def error(self, call) -> tuple[str, str]:
        try:
            call()
        except ClientError as error:
            return error.response["Error"]["Code"], error.response["Error"]["Message"]
        raise AssertionError("call succeeded")

    def test_new_roles_and_policies_are_not_usable_at_once(self) -> None:
        # A window long enough for a loaded machine; each check below starts right after a policy
        # write, so none depends on how long the previous one took.
        window = 3.0
        control("faults", {"delays": {"iam": window}})
        iam, lam, pipes = client("iam"), client("lambda"), client("pipes")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
            "Service": ["lambda.amazonaws.com", "pipes.amazonaws.com"]}}]}
        role = iam.create_role(RoleName="fresh-role", Path="/fresh/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        dlq = "arn:aws:sqs:ap-northeast-1:123456789012:fresh-dlq"
        create = lambda name, **extra: lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler="handler.handler",
            Code={"ZipFile": function_zip()}, **extra)
        self.assertEqual(self.error(lambda: create("fresh-fn")), (
            "InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda."))
        time.sleep(window + 0.1)
        create("fresh-fn", DeadLetterConfig={"TargetArn": dlq})

        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": dlq}]}
        iam.put_role_policy(RoleName="fresh-role", PolicyName="dlq", PolicyDocument=json.dumps(policy))
        no_send = ("InvalidParameterValueException",
                   "The provided execution role does not have permissions to call SendMessage on SQS")
        self.assertEqual(self.error(lambda: create("fresh-fn-2", DeadLetterConfig={"TargetArn": dlq})), no_send)
        self.assertEqual(self.error(lambda: lam.update_function_configuration(
            FunctionName="fresh-fn", DeadLetterConfig={"TargetArn": dlq + "-2"})), no_send)
        lam.update_function_configuration(FunctionName="fresh-fn", Timeout=30)  # neither role nor DLQ: no check
        create("fresh-fn-3")  # the role itself is old enough to be assumed

        cluster = make_cluster("fresh-cluster")
        iam.put_role_policy(RoleName="fresh-role", PolicyName="dlq", PolicyDocument=json.dumps(policy))
        code, message = self.error(lambda: lam.create_event_source_mapping(
            FunctionName="fresh-fn", EventSourceArn=cluster, Topics=["t"], StartingPosition="LATEST"))
        self.assertEqual(code, "InvalidParameterValueException")
        self.assertIn("Please ensure the role can perform the", message)

        pipe = lambda name: pipes.create_pipe(
            Name=name, RoleArn=role, Source=cluster, Target=lam.get_function(FunctionName="fresh-fn")["Configuration"]["FunctionArn"],
            SourceParameters={"ManagedStreamingKafkaParameters": {"TopicName": "t"}})
        state = lambda name: pipes.describe_pipe(Name=name)["CurrentState"]
        iam.put_role_policy(RoleName="fresh-role", PolicyName="dlq", PolicyDocument=json.dumps(policy))
        self.assertEqual(pipe("fresh-pipe")["CurrentState"], "CREATING")  # accepted, checked afterwards
        self.assertEqual(wait_for(lambda: state("fresh-pipe"), "CREATE_FAILED"), ["CREATING", "CREATE_FAILED"])
        self.assertIn("does not have permissions", pipes.describe_pipe(Name="fresh-pipe")["StateReason"])

        time.sleep(window + 0.1)
        lam.update_function_configuration(FunctionName="fresh-fn", DeadLetterConfig={"TargetArn": dlq + "-2"})
        lam.create_event_source_mapping(FunctionName="fresh-fn", EventSourceArn=cluster, Topics=["t"], StartingPosition="LATEST")
        pipe("fresh-pipe-2")
        self.assertEqual(wait_for(lambda: state("fresh-pipe-2"), "RUNNING"), ["CREATING", "RUNNING"])

    def test_pipe_update_right_after_a_role_change_fails_and_a_later_update_runs(self) -> None:
        # Pipes checks the role after UpdatePipe answered, as after CreatePipe (aws/aws-cdk#31664).
        window = 2.0
        iam, pipes = client("iam"), client("pipes")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
            "Service": "pipes.amazonaws.com"}}]}
        role = iam.create_role(RoleName="upd-role", Path="/fresh/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        other = iam.create_role(RoleName="upd-role-2", Path="/fresh/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        source = "arn:aws:kafka:ap-northeast-1:123456789012:cluster/upd-src/0e2f1c7a-1111-2222-3333-444455556666-s1"
        pipes.create_pipe(
            Name="upd-pipe", RoleArn=role, Source=source, Target="arn:aws:lambda:ap-northeast-1:123456789012:function:t",
            SourceParameters={"ManagedStreamingKafkaParameters": {"TopicName": "t", "BatchSize": 10}})
        state = lambda: pipes.describe_pipe(Name="upd-pipe")["CurrentState"]
        # UPDATING may be over before the first look on a loaded machine; no other state between.
        settles = lambda want: self.assertIn(wait_for(state, want), (["UPDATING", want], [want]))
        wait_for(state, "RUNNING")
        control("faults", {"delays": {"iam": window}})
        time.sleep(window + 0.1)  # both roles are now older than the window
        update = lambda batch, arn=role: pipes.update_pipe(
            Name="upd-pipe", RoleArn=arn,
            SourceParameters={"ManagedStreamingKafkaParameters": {"BatchSize": batch}})
        # A role untouched for longer than the window: the update runs.
        self.assertEqual(update(20)["CurrentState"], "UPDATING")
        settles("RUNNING")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kafka-cluster:*", "Resource": "*"}]}
        iam.put_role_policy(RoleName="upd-role", PolicyName="more", PolicyDocument=json.dumps(policy))
        self.assertEqual(update(30)["CurrentState"], "UPDATING")  # accepted, checked afterwards
        settles("UPDATE_FAILED")
        described = pipes.describe_pipe(Name="upd-pipe")
        self.assertEqual(described["StateReason"], "Input parameter is invalid from the request due to : "
                         "The provided customer role does not have permissions to call DescribeClusterV2 on Kafka")
        # UPDATE_FAILED is not transitional: the update can be sent again, and once the policy
        # has propagated it runs.
        time.sleep(window + 0.1)
        self.assertEqual(update(30)["CurrentState"], "UPDATING")
        settles("RUNNING")
        self.assertNotIn("StateReason", pipes.describe_pipe(Name="upd-pipe"))
        # Another role, given a policy within the window, fails the same way.
        iam.put_role_policy(RoleName="upd-role-2", PolicyName="more", PolicyDocument=json.dumps(policy))
        self.assertEqual(update(40, other)["CurrentState"], "UPDATING")
        settles("UPDATE_FAILED")

    def test_active_tracing_waits_for_new_policies(self) -> None:
        window = 3.0
        control("faults", {"delays": {"iam": window}})
        iam, lam = client("iam"), client("lambda")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
            "Service": "lambda.amazonaws.com"}}]}
        role = iam.create_role(RoleName="trace-role", Path="/fresh/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        time.sleep(window + 0.1)
        create = lambda name, **extra: lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler="handler.handler",
            Code={"ZipFile": function_zip()}, **extra)
        create("trace-fresh-fn")
        iam.attach_role_policy(RoleName="trace-role", PolicyArn="arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess")
        no_xray = ("InvalidParameterValueException",
                   "The provided execution role does not have permissions to call PutTraceSegments on XRAY")
        self.assertEqual(self.error(lambda: create("trace-fresh-fn-2", TracingConfig={"Mode": "Active"})), no_xray)
        self.assertEqual(self.error(lambda: lam.update_function_configuration(
            FunctionName="trace-fresh-fn", TracingConfig={"Mode": "Active"})), no_xray)
        lam.update_function_configuration(FunctionName="trace-fresh-fn", TracingConfig={"Mode": "PassThrough"})
        time.sleep(window + 0.1)
        lam.update_function_configuration(FunctionName="trace-fresh-fn", TracingConfig={"Mode": "Active"})


class FaultTest(EmulatorTest):
    def test_fault_esm_ends_disabled_with_reason(self) -> None:
        lam = client("lambda")
        make_function("esm-fault-fn")
        control("faults", {"esm": [{"functionName": "esm-fault-fn", "stateTransitionReason": "PROBLEM: Connection error.",
                                    "lastProcessingResult": "PROBLEM: Cluster failed to authorize Lambda."}]})
        uuid = lam.create_event_source_mapping(
            FunctionName="esm-fault-fn", EventSourceArn=make_cluster("esm-fault-cluster"), Topics=["t"], StartingPosition="LATEST")["UUID"]
        state = lambda: lam.get_event_source_mapping(UUID=uuid)["State"]
        self.assertEqual(wait_for(state, "Disabled"), ["Creating", "Disabled"])
        got = lam.get_event_source_mapping(UUID=uuid)
        self.assertEqual(got["StateTransitionReason"], "PROBLEM: Connection error.")
        self.assertEqual(got["LastProcessingResult"], "PROBLEM: Cluster failed to authorize Lambda.")

    def test_fault_pipe_create_failed(self) -> None:
        control("faults", {"pipes": [{"name": "pipe-fail", "state": "CREATE_FAILED", "stateReason": "Role cannot be assumed."}]})
        PipeTest.make_pipe(self, "pipe-fail")
        state = lambda: client("pipes").describe_pipe(Name="pipe-fail")["CurrentState"]
        self.assertEqual(wait_for(state, "CREATE_FAILED"), ["CREATING", "CREATE_FAILED"])
        self.assertEqual(client("pipes").describe_pipe(Name="pipe-fail")["StateReason"], "Role cannot be assumed.")

    def test_fault_msk_cluster_failed(self) -> None:
        control("faults", {"msk": [{"clusterName": "failing-cluster", "code": "InsufficientCapacity", "message": "No capacity."}]})
        kafka = client("kafka")
        arn = make_cluster("failing-cluster")
        state = lambda: kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]["State"]
        self.assertEqual(wait_for(state, "FAILED"), ["CREATING", "FAILED"])
        self.assertEqual(kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]["StateInfo"],
                         {"Code": "InsufficientCapacity", "Message": "No capacity."})

    def test_fault_throttle_then_retry_succeeds(self) -> None:
        control("faults", {"throttle": [{"action": "DescribeVpcs", "count": 1}, {"action": "ListFunctions", "count": 2}]})
        self.assertEqual(remaining_throttles(), {"DescribeVpcs": 1, "ListFunctions": 2})
        client("ec2").describe_subnets()  # another action leaves the counts alone
        self.assertEqual(remaining_throttles(), {"DescribeVpcs": 1, "ListFunctions": 2})
        ec2 = client("ec2", retries={"mode": "standard", "max_attempts": 3})
        raw = []
        ec2.meta.events.register("needs-retry.ec2.DescribeVpcs", lambda response, **_: raw.append(
            (response[0].status_code, response[1].get("Error", {}).get("Code")) if response else None))
        self.assertEqual(ec2.describe_vpcs()["ResponseMetadata"]["RetryAttempts"], 1)
        self.assertEqual(raw, [(400, "RequestLimitExceeded"), (200, None)])
        lam = client("lambda", retries={"mode": "standard", "max_attempts": 3})
        self.assertEqual(lam.list_functions()["ResponseMetadata"]["RetryAttempts"], 2)
        self.assertEqual(remaining_throttles(), {"DescribeVpcs": 0, "ListFunctions": 0})
        control("faults", {"throttle": [{"action": "ListFunctions", "count": 5}]})
        self.assertEqual(error_code(lam.list_functions), "TooManyRequestsException")
        # `remaining` counts down once per throttling error answered: the first attempt and
        # botocore's 3 retries (max_attempts counts retries) took 4 of the 5.
        self.assertEqual(remaining_throttles(), {"DescribeVpcs": 0, "ListFunctions": 1})

    def test_fault_delay_knob(self) -> None:
        snapshot = control("faults", {"delays": {"msk_create": 0.05}})
        self.assertEqual(snapshot["delays"]["msk_create"], 0.05)
        kafka = client("kafka")
        arn = make_cluster("fast-cluster")
        time.sleep(0.1)
        self.assertEqual(kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]["State"], "ACTIVE")
        self.assertEqual(control("reset-faults")["delays"]["msk_create"], float(DELAYS["EMULATOR_MSK_CREATE_SECONDS"]))


class SsmLockTest(EmulatorTest):
    """What mskctl's stack lock relies on: Parameter Store as a create-if-absent primitive."""

    def test_ssm_put_without_overwrite_is_create_if_absent(self) -> None:
        ssm = client("ssm")
        name = "/mskctl/lock-test/lock"
        self.assertEqual(ssm.put_parameter(Name=name, Value='{"run_id": "a"}', Type="String", Overwrite=False)["Version"], 1)
        self.assertEqual(error_code(lambda: ssm.put_parameter(
            Name=name, Value='{"run_id": "b"}', Type="String", Overwrite=False)), "ParameterAlreadyExists")
        self.assertEqual(ssm.get_parameter(Name=name)["Parameter"]["Value"], '{"run_id": "a"}')
        # SSM is regional: the same name in another region is another lock.
        other = boto3.client("ssm", endpoint_url=endpoint, region_name="eu-west-1",
                             aws_access_key_id="test", aws_secret_access_key="test")
        self.assertEqual(error_code(lambda: other.get_parameter(Name=name)), "ParameterNotFound")
        ssm.delete_parameter(Name=name)
        self.assertEqual(error_code(lambda: ssm.get_parameter(Name=name)), "ParameterNotFound")
        self.assertEqual(error_code(lambda: ssm.delete_parameter(Name=name)), "ParameterNotFound")
        self.assertEqual(ssm.put_parameter(Name=name, Value='{"run_id": "c"}', Type="String", Overwrite=False)["Version"], 1)
        ssm.delete_parameter(Name=name)

    def test_ssm_concurrent_creates_have_exactly_one_winner(self) -> None:
        # The race is in moto's backend, so it is provoked in-process, where the thread
        # switch interval can be shrunk: without the patch, most runs see two winners.
        import sys
        import threading

        from moto.ssm.exceptions import ParameterAlreadyExists
        from moto.ssm.models import ssm_backends

        sys.path.insert(0, str(HERE))
        from patches import ssm as ssm_patch

        ssm_patch.patch_put_parameter_atomic()
        backend = ssm_backends["123456789012"][REGION]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            winners_per_round = []
            for round_ in range(200):
                wins: list[int] = []
                start = threading.Barrier(8)

                def create(name: str = f"/race/{round_}") -> None:
                    start.wait()
                    try:
                        backend.put_parameter(
                            name=name, description=None, value="x", parameter_type="String",
                            allowed_pattern=None, keyid=None, overwrite=False, tags=[],
                            data_type="text", tier=None, policies=None)
                        wins.append(1)
                    except ParameterAlreadyExists:
                        pass

                threads = [threading.Thread(target=create) for _ in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                winners_per_round.append(len(wins))
        finally:
            sys.setswitchinterval(interval)
        self.assertEqual(set(winners_per_round), {1})


class AcceptanceFlowTest(EmulatorTest):
    """The non-patched parts of mskctl's stack, end to end through boto3."""

    def test_network_iam_sqs_lambda_and_tagging_flow(self) -> None:
        ec2, iam, sqs, lam = client("ec2"), client("iam"), client("sqs"), client("lambda")
        tags = lambda kind: [{"ResourceType": kind, "Tags": [{"Key": "stack", "Value": "flow"}]}]
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=tags("vpc"))["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.assertTrue(ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"])
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", TagSpecifications=tags("subnet"))["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
        self.assertTrue(ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["MapPublicIpOnLaunch"])
        igw = ec2.create_internet_gateway(TagSpecifications=tags("internet-gateway"))["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        eip = ec2.allocate_address(Domain="vpc", TagSpecifications=tags("elastic-ip"))["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip, TagSpecifications=tags("natgateway"))["NatGateway"]["NatGatewayId"]
        rt = ec2.create_route_table(VpcId=vpc, TagSpecifications=tags("route-table"))["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ec2.associate_route_table(RouteTableId=rt, SubnetId=subnet)
        self.assertIn(nat, [r.get("NatGatewayId") for r in ec2.describe_route_tables(RouteTableIds=[rt])["RouteTables"][0]["Routes"]])
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)

        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        role = iam.create_role(RoleName="flow-role", Path="/mskctl/", AssumeRolePolicyDocument=trust,
                               Tags=[{"Key": "stack", "Value": "flow"}])["Role"]["Arn"]
        iam.put_role_policy(RoleName="flow-role", PolicyName="kafka", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kafka-cluster:Connect", "Resource": "*"}]}))
        for policy in ("service-role/AWSLambdaBasicExecutionRole", "AmazonSQSFullAccess"):
            iam.attach_role_policy(RoleName="flow-role", PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
        self.assertEqual(len(iam.list_attached_role_policies(RoleName="flow-role")["AttachedPolicies"]), 2)

        queue = sqs.create_queue(QueueName="flow-dlq", Attributes={"MessageRetentionPeriod": "1209600"}, tags={"stack": "flow"})["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["MessageRetentionPeriod"], "1209600")
        lam.create_function(
            FunctionName="flow-fn", Runtime="python3.11", Architectures=["x86_64"], Role=role, Handler="handler.handler",
            Code={"ZipFile": function_zip()}, Layers=[PANDAS_LAYER], Environment={"Variables": {"MODE": "test"}},
            Timeout=300, MemorySize=512, DeadLetterConfig={"TargetArn": attrs["QueueArn"]}, Tags={"stack": "flow"})
        lam.put_function_event_invoke_config(FunctionName="flow-fn", MaximumRetryAttempts=2, MaximumEventAgeInSeconds=300)
        invoke_config = lam.get_function_event_invoke_config(FunctionName="flow-fn")
        self.assertEqual((invoke_config["MaximumRetryAttempts"], invoke_config["MaximumEventAgeInSeconds"]), (2, 300))

        time.sleep(0.6)  # the tagging index lags (TaggingIndexTest)
        found = client("resourcegroupstaggingapi").get_resources(TagFilters=[{"Key": "stack", "Values": ["flow"]}])
        arns = {m["ResourceARN"] for m in found["ResourceTagMappingList"]}
        self.assertIn(f"arn:aws:ec2:ap-northeast-1:123456789012:vpc/{vpc}", arns)
        self.assertIn("arn:aws:lambda:ap-northeast-1:123456789012:function:flow-fn", arns)
        self.assertIn(attrs["QueueArn"], arns)


class TaggingIndexTest(EmulatorTest):
    def listed(self, stack: str) -> dict[str, dict[str, str]]:
        found = client("resourcegroupstaggingapi").get_resources(TagFilters=[{"Key": "stack", "Values": [stack]}])
        return {m["ResourceARN"]: {t["Key"]: t["Value"] for t in m["Tags"]} for m in found["ResourceTagMappingList"]}

    def test_tagging_index_lags_behind_creates_tag_changes_and_deletes(self) -> None:
        # A 3 s lag (not the module's 0.5 s): each "not yet" check below must come within the
        # window of the change before it, even on a loaded machine.
        control("faults", {"delays": {"tagging_lag": 3}})
        sqs = client("sqs")
        url = sqs.create_queue(QueueName="lagging", tags={"stack": "lag", "v": "1"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        make_function("lagging-fn", Tags={"stack": "lag"})
        fn_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:lagging-fn"
        # Created, but not indexed yet.
        self.assertEqual(self.listed("lag"), {})
        seen = wait_for(lambda: sorted(self.listed("lag")), sorted([arn, fn_arn]), timeout=10)
        self.assertEqual(seen[0], [])
        # A tag change shows late.
        sqs.tag_queue(QueueUrl=url, Tags={"v": "2"})
        self.assertEqual(self.listed("lag")[arn]["v"], "1")
        wait_for(lambda: self.listed("lag")[arn]["v"], "2", timeout=10)
        # Deleted, but still listed with its tags.
        sqs.delete_queue(QueueUrl=url)
        client("lambda").delete_function(FunctionName="lagging-fn")
        self.assertEqual(self.listed("lag")[fn_arn], {"stack": "lag"})
        self.assertIn(arn, self.listed("lag"))
        seen = wait_for(lambda: sorted(self.listed("lag")), [], timeout=10)
        self.assertEqual(seen[0], sorted([arn, fn_arn]))

    def test_elastic_ips_event_source_mappings_and_pipes_are_indexed(self) -> None:
        # AWS's GetResources lists every resource type but IAM users and roles; moto's misses these.
        alloc = client("ec2").allocate_address(
            Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [{"Key": "stack", "Value": "idx"}]}],
        )["AllocationId"]
        make_function("idx-fn")
        esm = client("lambda").create_event_source_mapping(
            FunctionName="idx-fn", EventSourceArn=make_cluster("idx-cluster"), Topics=["t"],
            StartingPosition="LATEST", Tags={"stack": "idx"},
        )["EventSourceMappingArn"]
        pipe = PipeTest.make_pipe(self, "idx")["Arn"]  # tagged stack=idx
        eip = f"arn:aws:ec2:ap-northeast-1:123456789012:elastic-ip/{alloc}"
        wait_for(lambda: sorted(self.listed("idx")), sorted([eip, esm, pipe]))
        client("ec2").release_address(AllocationId=alloc)
        client("pipes").delete_pipe(Name="idx")
        client("lambda").delete_event_source_mapping(UUID=esm.rsplit(":", 1)[1])

        def listed_after_settling() -> list[str]:
            # Deletions settle when the service is next read, as the lifecycle patches do.
            client("pipes").list_pipes()
            client("lambda").list_event_source_mappings(FunctionName="idx-fn")
            return sorted(self.listed("idx"))

        wait_for(listed_after_settling, [])

    def test_http_apis_are_indexed(self) -> None:
        # AWS's GetResources lists API Gateway APIs; moto's apigatewayv2 does not feed its index.
        api = client("apigatewayv2").create_api(Name="idx-api", ProtocolType="HTTP", Tags={"stack": "idxapi"})
        arn = f"arn:aws:apigateway:ap-northeast-1::/apis/{api['ApiId']}"
        wait_for(lambda: sorted(self.listed("idxapi")), [arn])
        client("apigatewayv2").delete_api(ApiId=api["ApiId"])
        wait_for(lambda: sorted(self.listed("idxapi")), [])

    def test_ssm_parameters_are_indexed(self) -> None:
        # AWS's GetResources lists tagged SSM parameters (mskctl's Kafka topic records); moto's
        # ssm backend does not feed its index.
        ssm = client("ssm")
        ssm.put_parameter(Name="/idx/topics/t", Value="{}", Type="String", Tags=[{"Key": "stack", "Value": "idxssm"}])
        ssm.put_parameter(Name="/idx/untagged", Value="{}", Type="String")
        arn = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/idx/topics/t"
        wait_for(lambda: sorted(self.listed("idxssm")), [arn])
        ssm.delete_parameter(Name="/idx/topics/t")
        wait_for(lambda: sorted(self.listed("idxssm")), [])

    def test_tagging_lag_knob(self) -> None:
        control("faults", {"delays": {"tagging_lag": 0}})
        self.assertEqual(faults()["delays"]["tagging_lag"], 0)
        client("sqs").create_queue(QueueName="no-lag", tags={"stack": "nolag"})
        self.assertEqual(len(self.listed("nolag")), 1)


class KeepAliveTest(EmulatorTest):
    """launcher.KeepAliveHandler: a connection serves request after request (HTTP/1.1 keep-alive,
    as AWS endpoints do) instead of werkzeug's one request per connection."""

    SQS_AUTH = "AWS4-HMAC-SHA256 Credential=test/20260101/ap-northeast-1/sqs/aws4_request, SignedHeaders=host, Signature=0"

    def connect(self) -> httpclient.HTTPConnection:
        url = urllib.parse.urlsplit(endpoint)
        conn = httpclient.HTTPConnection(url.hostname, url.port, timeout=10)
        self.addCleanup(conn.close)
        return conn

    def sqs(self, conn: httpclient.HTTPConnection, action: str, body: dict, **headers: str):
        conn.request("POST", "/", body=json.dumps(body), headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{action}",
            "Authorization": self.SQS_AUTH, **headers})
        resp = conn.getresponse()
        return resp, json.loads(resp.read() or b"{}")

    def test_one_connection_serves_many_requests(self) -> None:
        conn = self.connect()
        resp, _ = self.sqs(conn, "CreateQueue", {"QueueName": "keep-alive"})
        self.assertEqual(resp.status, 200)
        self.assertIsNone(resp.getheader("Connection"))
        sock = conn.sock  # http.client opens a new socket after a reply that closed the connection
        for _ in range(3):
            resp, body = self.sqs(conn, "GetQueueUrl", {"QueueName": "keep-alive"})
            self.assertEqual(resp.status, 200)
            self.assertTrue(body["QueueUrl"].endswith("/keep-alive"))
        # A body nobody reads (the control endpoint's GET) must not spill into the next request.
        conn.request("GET", "/_emulator/faults", body=json.dumps({"pad": "x" * 5000}))
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertIn("dropped", json.loads(resp.read()))
        resp, body = self.sqs(conn, "GetQueueUrl", {"QueueName": "keep-alive"})
        self.assertEqual(resp.status, 200)
        self.assertIs(conn.sock, sock)
        # A client asking to close gets its connection closed.
        resp, _ = self.sqs(conn, "ListQueues", {}, Connection="close")
        self.assertEqual((resp.status, resp.getheader("Connection")), (200, "close"))
        self.assertIsNone(conn.sock)

    def test_a_chunked_request_is_served_and_its_connection_closed(self) -> None:
        conn = self.connect()
        conn.request("POST", "/_emulator/faults", body=iter([b"{}"]), encode_chunked=True)
        resp = conn.getresponse()
        self.assertEqual((resp.status, resp.getheader("Connection")), (200, "close"))
        self.assertIn("dropped", json.loads(resp.read()))

    def test_a_dropped_reply_still_resets_a_kept_connection(self) -> None:
        conn = self.connect()
        resp, _ = self.sqs(conn, "ListQueues", {})
        self.assertEqual(resp.status, 200)
        control("faults", {"drop_reply": {"sqs:ListQueues": 1}})
        with self.assertRaises((ConnectionError, httpclient.RemoteDisconnected)):
            self.sqs(conn, "ListQueues", {})
        self.assertEqual(faults()["dropped"], ["sqs:ListQueues"])


class LatencyKnobTest(unittest.TestCase):
    """EMULATOR_LATENCY_MS delays every AWS request, concurrently, and not the control endpoint."""

    def test_latency_is_added_to_aws_calls_only_and_overlaps(self) -> None:
        own = subprocess.Popen(
            [sys.executable, str(HERE / "launcher.py"), "--port", "0"],
            stdout=subprocess.PIPE, text=True, env={**os.environ, **DELAYS, "EMULATOR_LATENCY_MS": "300"},
        )
        try:
            url = own.stdout.readline().strip().split(" ", 1)[1]
            sqs = boto3.client("sqs", endpoint_url=url, region_name=REGION,
                               aws_access_key_id="test", aws_secret_access_key="test")
            sqs.list_queues()  # warm up the client and the backend
            started = time.monotonic()
            sqs.list_queues()
            self.assertGreaterEqual(time.monotonic() - started, 0.3)
            started = time.monotonic()
            urllib.request.urlopen(f"{url}/_emulator/faults").read()
            self.assertLess(time.monotonic() - started, 0.3)
            # Two calls at once take one latency, not two (the server is threaded).
            import threading
            calls = [threading.Thread(target=sqs.list_queues) for _ in range(2)]
            started = time.monotonic()
            for t in calls:
                t.start()
            for t in calls:
                t.join()
            self.assertLess(time.monotonic() - started, 0.55)
        finally:
            own.terminate()
            self.assertEqual(own.wait(timeout=10), 0)
            own.stdout.close()

    def test_a_bad_latency_is_refused(self) -> None:
        bad = subprocess.run(
            [sys.executable, str(HERE / "launcher.py"), "--port", "0"], capture_output=True, text=True,
            env={**os.environ, "EMULATOR_LATENCY_MS": "fast"}, timeout=60,
        )
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("EMULATOR_LATENCY_MS must be a number", bad.stderr)


class ThrottleTest(unittest.TestCase):
    """patches/throttle.py: AWS's default request rates, per account and action family."""

    @classmethod
    def setUpClass(cls) -> None:
        # Its own launcher, throttling on at a fifth of AWS's rates (buckets fill faster
        # in a test): EC2 non-mutating 20 tokens + 4/s, Lambda control plane 3 + 3/s.
        cls.own = subprocess.Popen(
            [sys.executable, str(HERE / "launcher.py"), "--port", "0"], stdout=subprocess.PIPE, text=True,
            env={**os.environ, **DELAYS, "EMULATOR_KAFKA_BROKER": "0",
                 "EMULATOR_THROTTLE": "aws", "EMULATOR_THROTTLE_SCALE": "0.2"},
        )
        cls.url = cls.own.stdout.readline().strip().split(" ", 1)[1]

    @classmethod
    def tearDownClass(cls) -> None:
        cls.own.terminate()
        assert cls.own.wait(timeout=10) == 0
        cls.own.stdout.close()

    def client(self, service: str):
        # No SDK retries: every throttled answer reaches the test.
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))

    def counts(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_emulator/faults") as resp:
            return json.load(resp)

    def burst(self, call, n: int) -> list[tuple[str, int]]:
        """n calls at once (threads), the throttling answers among them as (code, status)."""
        import threading
        errors: list[tuple[str, int]] = []

        def one() -> None:
            try:
                call()
            except ClientError as e:
                errors.append((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]))
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def setUp(self) -> None:
        req = urllib.request.Request(f"{self.url}/_emulator/reset-faults", data=b"", method="POST")
        urllib.request.urlopen(req).read()

    def scale(self, scale: float) -> None:
        urllib.request.urlopen(urllib.request.Request(
            f"{self.url}/_emulator/faults", data=json.dumps({"throttle_scale": scale}).encode(),
            method="POST")).read()

    def test_a_burst_beyond_the_bucket_gets_each_services_throttling_answer(self) -> None:
        # A twentieth of AWS's rates: buckets of a few tokens that barely refill while a
        # burst is served (the machine may be slow).
        self.scale(0.05)
        ec2, lam, iam, sqs = self.client("ec2"), self.client("lambda"), self.client("iam"), self.client("sqs")
        # EC2 DescribeVpcs: 5 tokens, 1 a second; 40 at once.
        errors = self.burst(ec2.describe_vpcs, 40)
        self.assertGreaterEqual(len(errors), 20, errors)
        self.assertEqual(set(errors), {("RequestLimitExceeded", 503)})
        # Per API: another EC2 API has its own bucket, still full.
        self.assertEqual(self.burst(ec2.describe_subnets, 4), [])
        # Lambda's control plane shares one bucket (1 token here; 15 a second at scale 1).
        errors = self.burst(lam.list_functions, 6) + self.burst(lam.list_event_source_mappings, 6)
        self.assertGreaterEqual(len(errors), 5, errors)
        self.assertEqual(set(errors), {("TooManyRequestsException", 429)})
        self.assertEqual(set(self.burst(iam.list_roles, 20)), {("Throttling", 400)})
        self.assertEqual(set(self.burst(sqs.list_queues, 40)), {("RequestThrottled", 400)})
        counts = self.counts()
        self.assertGreaterEqual(counts["throttled"]["ec2:DescribeVpcs"], 20)
        self.assertEqual(counts["throttled_total"], sum(counts["throttled"].values()))
        self.assertEqual((counts["throttle_mode"], counts["throttle_scale"]), ("aws", 0.05))

    def test_a_paced_stream_is_never_throttled(self) -> None:
        ec2 = self.client("ec2")
        # 20 tokens and 4/s at this scale: a burst of 15, then 3 a second for 4 s.
        self.assertEqual(self.burst(ec2.describe_route_tables, 15), [])
        for _ in range(12):
            ec2.describe_route_tables()
            time.sleep(1 / 3)
        self.assertEqual(self.counts()["throttled_total"], 0)

    def test_the_sdk_retries_a_throttled_call_and_succeeds(self) -> None:
        self.scale(0.05)  # Lambda's control plane: 1 token, 0.75 a second
        lam = boto3.client("lambda", endpoint_url=self.url, region_name=REGION, aws_access_key_id="test",
                           aws_secret_access_key="test", config=Config(retries={"mode": "standard", "total_max_attempts": 10}))
        self.assertEqual(self.burst(lam.list_functions, 4), [])  # every call gets through
        self.assertGreaterEqual(self.counts()["throttled"]["lambda:ListFunctions"], 1)

    def test_throttling_switches_off_and_scales_through_the_control_endpoint(self) -> None:
        control_at = lambda body: urllib.request.urlopen(urllib.request.Request(
            f"{self.url}/_emulator/faults", data=json.dumps(body).encode(), method="POST")).read()
        control_at({"throttle_mode": "off"})
        self.assertEqual(self.burst(self.client("lambda").list_functions, 10), [])
        control_at({"throttle_mode": "aws", "throttle_scale": 1})
        self.assertEqual(self.burst(self.client("lambda").list_functions, 12), [])  # 15 at scale 1
        with self.assertRaises(urllib.error.HTTPError):
            control_at({"throttle_mode": "sometimes"})
        self.assertEqual(self.counts()["throttle_mode"], "aws")

    def test_the_families_follow_aws_documentation(self) -> None:
        sys.path.insert(0, str(HERE))
        from patches.throttle import bucket_for
        self.assertEqual(bucket_for("ec2", "DescribeVpcs"), ("DescribeVpcs", (100, 20)))
        self.assertEqual(bucket_for("ec2", "DescribeSecurityGroups"), ("DescribeSecurityGroups(unfiltered)", (50, 10)))
        self.assertEqual(bucket_for("ec2", "DescribeSecurityGroups", {"Filter.1.Name": "vpc-id"}),
                         ("DescribeSecurityGroups", (100, 20)))
        self.assertEqual(bucket_for("ec2", "CreateSecurityGroup"), ("CreateSecurityGroup", (50, 5)))
        self.assertEqual(bucket_for("ec2", "AuthorizeSecurityGroupIngress")[1], (50, 5))
        self.assertEqual(bucket_for("ec2", "CreateVpcEndpoint")[1], (4, 0.3))
        self.assertEqual(bucket_for("ec2", "CreateTags")[1], (100, 10))
        self.assertEqual(bucket_for("lambda", "GetFunction"), ("GetFunction", (100, 100)))
        self.assertEqual(bucket_for("lambda", "GetPolicy"), ("GetPolicy", (15, 15)))
        self.assertEqual(bucket_for("lambda", "CreateFunction"), bucket_for("lambda", "ListFunctions"))
        self.assertIsNone(bucket_for("lambda", "Invoke"))
        self.assertIsNone(bucket_for("sqs", "SendMessage"))
        self.assertEqual(bucket_for("apigatewayv2", "CreateApi"), ("total", (40, 10)))

    def test_a_bad_setting_is_refused(self) -> None:
        for env, message in [({"EMULATOR_THROTTLE": "sometimes"}, "EMULATOR_THROTTLE must be one of"),
                             ({"EMULATOR_THROTTLE_SCALE": "0"}, "EMULATOR_THROTTLE_SCALE must be a positive number")]:
            bad = subprocess.run([sys.executable, str(HERE / "launcher.py"), "--port", "0"], capture_output=True,
                                 text=True, env={**os.environ, "EMULATOR_KAFKA_BROKER": "0", **env}, timeout=60)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn(message, bad.stderr)


class KafkaBrokerTest(EmulatorTest):
    """The launcher's local Kafka broker (patches/kafka_broker.py): a real Tansu broker."""

    def test_broker_is_a_real_kafka_broker(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

        bootstrap = kafka_bootstrap()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            admin.create_topics([NewTopic("broker-test", 2, 1, topic_configs={"retention.ms": "3600000"})])
            self.assertIn("broker-test", admin.list_topics())
            described = admin.describe_topics(["broker-test"])[0]
            self.assertEqual(len(described["partitions"]), 2)
            # Tansu reports a topic's own configs with source DEFAULT_CONFIG (Kafka:
            # DYNAMIC_TOPIC_CONFIG), so kafka-python's default filter ("modified") hides them.
            configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "broker-test")],
                                             config_filter="all")
            self.assertEqual(configs["topic"]["broker-test"]["retention.ms"]["value"], "3600000")
        finally:
            admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send("broker-test", b"hello", partition=0).get(timeout=10)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5000)
        from kafka import TopicPartition
        consumer.assign([TopicPartition("broker-test", 0)])
        consumer.seek_to_beginning()
        self.assertEqual([m.value for m in consumer], [b"hello"])
        consumer.close()

    def test_broker_dies_with_a_killed_launcher(self) -> None:
        import signal
        import socket

        own = subprocess.Popen([sys.executable, str(HERE / "launcher.py"), "--port", "0"],
                               stdout=subprocess.PIPE, text=True, env={**os.environ, **DELAYS})
        url = own.stdout.readline().strip().split(" ", 1)[1]
        with urllib.request.urlopen(f"{url}/_emulator/kafka") as resp:
            host, port = json.load(resp)["bootstrap"].rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=2).close()
        own.send_signal(signal.SIGKILL)  # no cleanup in the launcher: the broker must still go
        own.wait(timeout=10)
        own.stdout.close()

        def listening() -> bool:
            try:
                socket.create_connection((host, int(port)), timeout=0.5).close()
                return True
            except OSError:
                return False

        self.assertEqual(wait_for(listening, False)[-1], False)


HANDLER_CODE = """
import base64, importlib.util, json, os, sys, time
import boto3

def echo(event, context):
    print("echo got", json.dumps(event))
    queues = boto3.client("sqs").list_queues().get("QueueUrls", [])
    return {
        "event": event,
        "env": {k: os.environ.get(k) for k in (
            "GREETING", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME",
            "KAFKA_SECURITY_OVERRIDE", "AWS_ACCESS_KEY_ID")},
        "visible": {m: importlib.util.find_spec(m) is not None for m in ("boto3", "botocore", "moto", "flask", "kafka")},
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "queues": queues,
    }

def boom(event, context):
    raise ValueError("boom: " + event.get("why", ""))

def slow(event, context):
    time.sleep(10)

def to_queue(event, context):
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=event["queue"])["QueueUrl"], MessageBody="ran")

COUNT = 0

def count(event, context):
    global COUNT
    COUNT += 1
    print("invocation", COUNT)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"count": COUNT, "pid": os.getpid()}

FAILS = 0

def consume(event, context):
    global FAILS
    sqs = boto3.client("sqs")
    values = [base64.b64decode(r["value"]).decode() for rs in event["records"].values() for r in rs]
    if "fail-once" in values and FAILS == 0:
        FAILS += 1
        raise RuntimeError("the first try fails")
    keys = [base64.b64decode(r["key"]).decode() for rs in event["records"].values() for r in rs if "key" in r]
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=os.environ["QUEUE"])["QueueUrl"], MessageBody=json.dumps({
        "source": event["eventSource"], "arn": event.get("eventSourceArn"), "bootstrap": event["bootstrapServers"],
        "partitions": sorted(event["records"]), "values": values, "keys": keys, "fails": FAILS}))

def api_echo(event, context):
    return {"statusCode": 201, "headers": {"x-got": "yes", "content-type": "application/json"},
            "body": json.dumps(event)}

def api_bare(event, context):
    return {"item": event["pathParameters"]["id"], "query": event.get("queryStringParameters")}
"""


def handler_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


class LambdaInvokeTest(EmulatorTest):
    """patches/lambda_invoke.py: Python handlers run for real, replies as the Invoke API's."""

    def function(self, name: str, handler: str, files: dict[str, str] | None = None, **extra) -> None:
        client("lambda").create_function(
            FunctionName=name, Runtime="python3.12", Role=ROLE, Handler=handler,
            Code={"ZipFile": handler_zip(files or {"app.py": HANDLER_CODE})}, **extra,
        )

    def test_invoke_runs_the_handler_with_its_event_and_environment(self) -> None:
        self.function("inv-echo", "app.echo", Environment={"Variables": {"GREETING": "hi"}}, Timeout=30)
        client("sqs").create_queue(QueueName="inv-echo-q")
        started = time.monotonic()
        out = client("lambda").invoke(FunctionName="inv-echo", Payload=json.dumps({"n": 1}), LogType="Tail")
        elapsed = time.monotonic() - started
        self.assertEqual(out["StatusCode"], 200)
        self.assertNotIn("FunctionError", out)
        body = json.loads(out["Payload"].read())
        self.assertEqual(body["event"], {"n": 1})
        self.assertEqual(body["env"], {
            "GREETING": "hi", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": "inv-echo", "KAFKA_SECURITY_OVERRIDE": "plaintext",
            "AWS_ACCESS_KEY_ID": "test"})
        # What the Lambda Python runtime provides, and nothing else of the emulator's venv.
        self.assertEqual(body["visible"], {"boto3": True, "botocore": True, "moto": False, "flask": False, "kafka": False})
        self.assertEqual(body["function_name"], "inv-echo")
        self.assertTrue(25000 < body["remaining_ms"] <= 30000, body["remaining_ms"])
        # boto3 in the handler calls the emulator.
        self.assertTrue(any(q.endswith("/inv-echo-q") for q in body["queues"]), body["queues"])
        log = base64.b64decode(out["LogResult"]).decode()
        self.assertRegex(log, r"^START RequestId: [0-9a-f-]{36} Version: \$LATEST\n")
        self.assertIn('echo got {"n": 1}\n', log)
        self.assertRegex(log, r"END RequestId: [0-9a-f-]{36}\nREPORT RequestId: [0-9a-f-]{36}\tDuration: ")
        self.assertLess(elapsed, 10)
        # Without LogType=Tail there is no log.
        self.assertNotIn("LogResult", client("lambda").invoke(FunctionName="inv-echo", Payload=b"{}"))

    def test_invoke_reports_an_exception_as_unhandled(self) -> None:
        self.function("inv-boom", "app.boom")
        out = client("lambda").invoke(FunctionName="inv-boom", Payload=json.dumps({"why": "bad input"}))
        self.assertEqual(out["StatusCode"], 200)
        self.assertEqual(out["FunctionError"], "Unhandled")
        body = json.loads(out["Payload"].read())
        self.assertEqual((body["errorType"], body["errorMessage"]), ("ValueError", "boom: bad input"))
        self.assertTrue(any('in boom' in line for line in body["stackTrace"]), body["stackTrace"])

    def test_invoke_of_a_package_missing_a_dependency(self) -> None:
        # kafka-python is installed in the emulator's venv, but not in the function's package.
        self.function("inv-nodeps", "producer.handler",
                      {"producer.py": "import kafka\n\ndef handler(event, context):\n    return 1\n"})
        out = client("lambda").invoke(FunctionName="inv-nodeps")
        self.assertEqual(out["FunctionError"], "Unhandled")
        body = json.loads(out["Payload"].read())
        self.assertEqual(body["errorType"], "Runtime.ImportModuleError")
        self.assertEqual(body["errorMessage"], "Unable to import module 'producer': No module named 'kafka'")
        # A missing handler function and a bad payload.
        self.function("inv-nohandler", "app.nothing")
        body = json.loads(client("lambda").invoke(FunctionName="inv-nohandler")["Payload"].read())
        self.assertEqual((body["errorType"], body["errorMessage"]),
                         ("Runtime.HandlerNotFound", "Handler 'nothing' missing on module 'app'"))
        self.assertEqual(error_code(lambda: client("lambda").invoke(FunctionName="inv-nohandler", Payload=b"{not json")),
                         "InvalidRequestContentException")

    def test_invoke_enforces_the_timeout(self) -> None:
        self.function("inv-slow", "app.slow", Timeout=1)
        started = time.monotonic()
        out = client("lambda").invoke(FunctionName="inv-slow")
        # Cut well before the handler's 10 s sleep ends (the cold start's imports come first).
        self.assertLess(time.monotonic() - started, 8)
        self.assertEqual(out["FunctionError"], "Unhandled")
        body = json.loads(out["Payload"].read())
        self.assertEqual(body["errorType"], "Sandbox.Timedout")
        self.assertRegex(body["errorMessage"], r"^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$")
        # The init phase (importing the module) does not count in the timeout, as on AWS.
        self.function("inv-slow-init", "slowinit.handler", Timeout=1, files={
            "slowinit.py": "import time\ntime.sleep(1.5)\n\ndef handler(event, context):\n"
                           "    return context.get_remaining_time_in_millis()\n"})
        out = client("lambda").invoke(FunctionName="inv-slow-init")
        self.assertNotIn("FunctionError", out)
        self.assertGreater(json.loads(out["Payload"].read()), 800)

    def test_invoke_event_runs_in_the_background_and_dry_run_does_not_run(self) -> None:
        self.function("inv-event", "app.to_queue", Timeout=30)
        sqs = client("sqs")
        url = sqs.create_queue(QueueName="inv-event-q")["QueueUrl"]
        lam = client("lambda")
        self.assertEqual(lam.invoke(FunctionName="inv-event", InvocationType="DryRun",
                                    Payload=json.dumps({"queue": "inv-event-q"}))["StatusCode"], 204)
        self.assertEqual(lam.invoke(FunctionName="inv-event", InvocationType="Event",
                                    Payload=json.dumps({"queue": "inv-event-q"}))["StatusCode"], 202)
        received = lambda: [m["Body"] for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])]
        wait_for(received, ["ran"], timeout=15)
        self.assertEqual(received(), [])  # the dry run did not run it

    def test_warm_environments_are_reused_until_the_function_changes(self) -> None:
        lam = client("lambda")
        self.function("inv-warm", "app.count", Timeout=2)
        invoke = lambda payload=None, **kw: lam.invoke(FunctionName="inv-warm", Payload=json.dumps(payload or {}), **kw)
        first = json.loads(invoke()["Payload"].read())
        out = invoke(LogType="Tail")
        second = json.loads(out["Payload"].read())
        # Module state survives between invocations of one environment, as on AWS.
        self.assertEqual((first["count"], second["count"], second["pid"]), (1, 2, first["pid"]))
        log = base64.b64decode(out["LogResult"]).decode()
        self.assertIn("invocation 2\n", log)
        self.assertNotIn("invocation 1\n", log)  # each invocation's log is its own
        # A configuration change means new environments (a cold start).
        lam.update_function_configuration(FunctionName="inv-warm", Environment={"Variables": {"V": "2"}})
        after = json.loads(invoke()["Payload"].read())
        self.assertEqual(after["count"], 1)
        self.assertNotEqual(after["pid"], first["pid"])
        # A timeout ends the environment: the next invocation starts afresh.
        self.assertEqual(invoke({"sleep": 5}).get("FunctionError"), "Unhandled")
        self.assertEqual(json.loads(invoke()["Payload"].read())["count"], 1)

    def test_environments_die_with_a_killed_launcher(self) -> None:
        import signal

        own = subprocess.Popen([sys.executable, str(HERE / "launcher.py"), "--port", "0"],
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, **DELAYS, "EMULATOR_KAFKA_BROKER": "0"})
        url = own.stdout.readline().strip().split(" ", 1)[1]
        lam = boto3.client("lambda", endpoint_url=url, region_name=REGION,
                           aws_access_key_id="test", aws_secret_access_key="test")
        boto3.client("iam", endpoint_url=url, region_name=REGION, aws_access_key_id="test",
                     aws_secret_access_key="test").create_role(
            RoleName="test-role", Path="/service-role/", AssumeRolePolicyDocument="{}")
        lam.create_function(FunctionName="orphan", Runtime="python3.12", Role=ROLE, Handler="app.count",
                            Code={"ZipFile": handler_zip({"app.py": HANDLER_CODE})})
        pid = json.loads(lam.invoke(FunctionName="orphan")["Payload"].read())["pid"]
        os.kill(pid, 0)  # the warm environment is there
        own.send_signal(signal.SIGKILL)
        own.wait(timeout=10)
        own.stdout.close()

        def running() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            # A zombie (dead, not yet reaped by init) counts as gone.
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(") ", 1)[1][0] != "Z"

        self.assertEqual(wait_for(running, False)[-1], False)
        # Its work directory (unpacked code) is left behind, and the next launcher that runs a
        # function removes it.
        import glob
        import tempfile

        leftover = glob.glob(os.path.join(tempfile.gettempdir(), f"emulator-lambda-{own.pid}-*"))
        self.assertEqual(len(leftover), 1)
        make_function("sweeper")
        client("lambda").invoke(FunctionName="sweeper")
        self.assertFalse(os.path.exists(leftover[0]))

    def test_other_runtimes_keep_motos_behaviour(self) -> None:
        # Only python3.x runs here; moto would run a Node.js handler in Docker, absent here.
        client("lambda").create_function(
            FunctionName="inv-node", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
            Code={"ZipFile": handler_zip({"index.js": "exports.handler = async () => 1;"})})
        out = client("lambda").invoke(FunctionName="inv-node")
        self.assertEqual(out["FunctionError"], "Handled")
        self.assertIn(b"error running docker", out["Payload"].read())

    def test_invoke_of_a_function_not_active_or_throttled(self) -> None:
        lam, ec2 = client("lambda"), client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
        sg = ec2.create_security_group(GroupName="inv-g", Description="g", VpcId=vpc)["GroupId"]
        control("faults", {"delays": {"lambda_vpc": 30}})  # Pending for the whole test (reset in tearDown)
        self.function("inv-pending", "app.echo", VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [sg]})
        try:
            lam.invoke(FunctionName="inv-pending")
            raise AssertionError("invoke of a Pending function succeeded")
        except ClientError as error:
            self.assertEqual(error.response["Error"]["Code"], "ResourceConflictException")
            self.assertEqual(error.response["ResponseMetadata"]["HTTPStatusCode"], 409)
            self.assertEqual(error.response["Error"]["Message"], "The operation cannot be performed at this time. "
                             "The function is currently in the following state: Pending")
        self.function("inv-zero", "app.echo")
        lam.put_function_concurrency(FunctionName="inv-zero", ReservedConcurrentExecutions=0)
        self.assertEqual(error_code(lambda: lam.invoke(FunctionName="inv-zero")), "TooManyRequestsException")


class KafkaEsmDeliveryTest(EmulatorTest):
    """patches/kafka_esm_delivery.py: Enabled Kafka mappings deliver the local broker's records."""

    def consumer(self, name: str) -> str:
        client("sqs").create_queue(QueueName=f"{name}-q")
        client("lambda").create_function(
            FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.consume", Timeout=30,
            Code={"ZipFile": handler_zip({"app.py": HANDLER_CODE})}, Environment={"Variables": {"QUEUE": f"{name}-q"}})
        return name

    def received(self, name: str, count: int) -> list[dict]:
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName=f"{name}-q")["QueueUrl"]
        got: list[dict] = []
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return got

    def produce(self, topic: str, *messages: tuple[str | None, str]) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap())
        for key, value in messages:
            producer.send(topic, value.encode(), key=key.encode() if key else None).get(timeout=10)
        producer.close()

    def topic(self, name: str, partitions: int) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap())
        admin.create_topics([NewTopic(name, partitions, 1)])
        admin.close()

    def enabled(self, uuid_: str) -> None:
        lam = client("lambda")
        wait_for(lambda: lam.get_event_source_mapping(UUID=uuid_)["State"], "Enabled")

    def test_msk_mapping_delivers_records_and_retries_a_failed_batch(self) -> None:
        lam = client("lambda")
        arn = make_cluster("esm-deliver")
        wait_for(lambda: client("kafka").describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]["State"], "ACTIVE")
        self.topic("deliver-orders", 1)
        self.produce("deliver-orders", ("k1", "before"))  # TRIM_HORIZON: read too
        esm = lam.create_event_source_mapping(
            FunctionName=self.consumer("esm-deliver-fn"), EventSourceArn=arn, Topics=["deliver-orders"],
            StartingPosition="TRIM_HORIZON", BatchSize=10, MaximumBatchingWindowInSeconds=1)["UUID"]
        self.enabled(esm)
        first = self.received("esm-deliver-fn", 1)
        self.assertEqual(first, [{"source": "aws:kafka", "arn": arn, "bootstrap": kafka_bootstrap(),
                                  "partitions": ["deliver-orders-0"], "values": ["before"], "keys": ["k1"], "fails": 0}])
        self.assertEqual(lam.get_event_source_mapping(UUID=esm)["LastProcessingResult"], "OK")
        # A failing batch is retried until the function succeeds; nothing is lost or repeated.
        self.produce("deliver-orders", (None, "fail-once"))
        again = self.received("esm-deliver-fn", 1)
        self.assertEqual([(m["values"], m["fails"]) for m in again], [(["fail-once"], 1)])
        lam.delete_event_source_mapping(UUID=esm)

    def test_self_managed_mapping_of_the_local_broker_and_latest(self) -> None:
        lam = client("lambda")
        self.topic("deliver-latest", 2)
        self.produce("deliver-latest", (None, "old"))  # LATEST: not delivered
        esm = lam.create_event_source_mapping(
            FunctionName=self.consumer("esm-latest-fn"), Topics=["deliver-latest"], StartingPosition="LATEST",
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka_bootstrap()]}})["UUID"]
        self.enabled(esm)
        time.sleep(2)  # the poller starts at the end of each partition
        self.produce("deliver-latest", (None, "new"))
        got = self.received("esm-latest-fn", 1)
        self.assertEqual([(m["source"], m["arn"], m["values"]) for m in got], [("SelfManagedKafka", None, ["new"])])
        lam.delete_event_source_mapping(UUID=esm)


def signed(method: str, url: str, body: bytes = b"", *, secret: str = "test", service: str = "execute-api",
           headers: dict | None = None) -> dict[str, str]:
    """Headers of `url` signed with SigV4 as an AWS SDK signs an execute-api request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials("test", secret), service, REGION).add_auth(request)
    return dict(request.headers.items())


def http(method: str, url: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body or None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


class ExecuteApiTest(EmulatorTest):
    """patches/execute_api.py: HTTP API requests routed, authorised and sent to Lambda."""

    def api(self, name: str, *, permit: bool = True) -> tuple[str, str]:
        lam, apigw = client("lambda"), client("apigatewayv2")
        files = {"app.py": HANDLER_CODE}
        arns = {}
        for fn, handler in ((f"{name}-echo", "app.api_echo"), (f"{name}-bare", "app.api_bare")):
            arns[fn] = lam.create_function(FunctionName=fn, Runtime="python3.12", Role=ROLE, Handler=handler,
                                           Timeout=30, Code={"ZipFile": handler_zip(files)})["FunctionArn"]
        api_id = apigw.create_api(Name=name, ProtocolType="HTTP")["ApiId"]
        echo = apigw.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
            IntegrationUri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arns[name + '-echo']}/invocations",
        )["IntegrationId"]
        bare = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
                                        IntegrationUri=arns[f"{name}-bare"])["IntegrationId"]
        apigw.create_route(ApiId=api_id, RouteKey="POST /messages", AuthorizationType="AWS_IAM",
                           Target=f"integrations/{echo}")
        apigw.create_route(ApiId=api_id, RouteKey="GET /items/{id}", Target=f"integrations/{bare}")
        apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        apigw.create_stage(ApiId=api_id, StageName="prod")
        if permit:
            for fn in arns:
                lam.add_permission(FunctionName=fn, StatementId="apigw", Action="lambda:InvokeFunction",
                                   Principal="apigateway.amazonaws.com",
                                   SourceArn=f"arn:aws:execute-api:{REGION}:123456789012:{api_id}/*/*")
        return api_id, f"{endpoint}/_execute-api/{api_id}"

    def test_signed_request_is_routed_to_the_function_with_a_2_0_event(self) -> None:
        api_id, base = self.api("xa")
        body = json.dumps({"order": 7}).encode()
        url = f"{base}/messages?x=1&x=2"
        status, headers, data = http("POST", url, body, signed("POST", url, body, headers={"Content-Type": "application/json"}))
        self.assertEqual((status, headers.get("x-got")), (201, "yes"), data)
        event = json.loads(data)
        self.assertEqual({k: event[k] for k in ("version", "routeKey", "rawPath", "rawQueryString", "body", "isBase64Encoded")},
                         {"version": "2.0", "routeKey": "POST /messages", "rawPath": "/messages",
                          "rawQueryString": "x=1&x=2", "body": '{"order": 7}', "isBase64Encoded": False})
        self.assertEqual(event["queryStringParameters"], {"x": "1,2"})
        self.assertEqual(event["headers"]["content-type"], "application/json")
        self.assertEqual(event["headers"]["host"], f"{api_id}.execute-api.{REGION}.amazonaws.com")
        ctx = event["requestContext"]
        self.assertEqual((ctx["accountId"], ctx["apiId"], ctx["stage"], ctx["routeKey"]),
                         ("123456789012", api_id, "$default", "POST /messages"))
        self.assertEqual((ctx["http"]["method"], ctx["http"]["path"]), ("POST", "/messages"))
        self.assertEqual((ctx["authorizer"]["iam"]["accessKey"], ctx["authorizer"]["iam"]["accountId"]),
                         ("test", "123456789012"))
        # A named stage is the first path segment, and part of rawPath.
        url = f"{base}/prod/messages"
        status, _, data = http("POST", url, b"hi", signed("POST", url, b"hi", headers={"Content-Type": "text/plain"}))
        event = json.loads(data)
        self.assertEqual((status, event["rawPath"], event["requestContext"]["stage"], event["body"]),
                         (201, "/prod/messages", "prod", "hi"))
        # Binary bodies arrive base64-encoded.
        status, _, data = http("POST", f"{base}/messages", b"\x00\x01",
                               signed("POST", f"{base}/messages", b"\x00\x01",
                                      headers={"Content-Type": "application/octet-stream"}))
        event = json.loads(data)
        self.assertEqual((event["body"], event["isBase64Encoded"]), ("AAE=", True))
        # The Host form: the API's own host name in the Host header.
        host = f"{api_id}.execute-api.{REGION}.amazonaws.com"
        url = f"{endpoint}/messages"
        status, _, data = http("POST", url, b"{}", signed("POST", url, b"{}", headers={"Host": host}))
        self.assertEqual((status, json.loads(data)["routeKey"]), (201, "POST /messages"))

    def test_iam_routes_refuse_unsigned_and_badly_signed_requests(self) -> None:
        _, base = self.api("xb")
        url = f"{base}/messages"
        self.assertEqual(http("POST", url, b"{}")[::2], (403, b'{"message": "Forbidden"}'))
        status, _, data = http("POST", url, b"{}", signed("POST", url, b"{}", secret="wrong"))
        self.assertEqual(status, 403)
        self.assertIn("The request signature we calculated does not match", json.loads(data)["message"])
        status, _, data = http("POST", url, b"{}", signed("POST", url, b"{}", service="lambda"))
        self.assertEqual((status, json.loads(data)["message"]),
                         (403, "Credential should be scoped to correct service: 'execute-api'. "))
        # The body is part of the signature.
        status, _, _ = http("POST", url, b'{"tampered": 1}', signed("POST", url, b"{}"))
        self.assertEqual(status, 403)

    def test_routes_path_parameters_and_bare_results(self) -> None:
        _, base = self.api("xc")
        status, headers, data = http("GET", f"{base}/items/42?q=a")
        self.assertEqual((status, headers["Content-Type"]), (200, "application/json"))
        self.assertEqual(json.loads(data), {"item": "42", "query": {"q": "a"}})
        self.assertEqual(http("GET", f"{base}/nothing/here")[::2], (404, b'{"message": "Not Found"}'))
        self.assertEqual(http("DELETE", f"{base}/items/42")[::2], (404, b'{"message": "Not Found"}'))
        self.assertEqual(http("GET", f"{endpoint}/_execute-api/nosuchapi/items/1")[0], 404)

    def test_function_without_permission_for_the_api_is_an_internal_error(self) -> None:
        api_id, base = self.api("xd", permit=False)
        self.assertEqual(http("GET", f"{base}/items/1")[::2], (500, b'{"message": "Internal Server Error"}'))
        # A permission for another API does not do.
        lam = client("lambda")
        lam.add_permission(FunctionName="xd-bare", StatementId="other", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:{REGION}:123456789012:otherapi/*/*")
        self.assertEqual(http("GET", f"{base}/items/1")[0], 500)
        lam.add_permission(FunctionName="xd-bare", StatementId="this", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:{REGION}:123456789012:{api_id}/*/GET/items/{{id}}")
        self.assertEqual(http("GET", f"{base}/items/1")[0], 200)


if __name__ == "__main__":
    unittest.main()


class LostReplyTest(EmulatorTest):
    """replies.patch_dropped_replies: the call takes effect, its answer never arrives."""

    def no_retries(self, service: str, **config: object):
        return client(service, retries={"total_max_attempts": 1}, **config)

    def lost(self, call) -> str:
        try:
            call()
        except ClientError as error:
            raise AssertionError(f"AWS answered: {error}")
        except Exception as error:  # botocore's ConnectionClosedError, ReadTimeoutError...
            return type(error).__name__
        raise AssertionError("the reply arrived")

    def test_each_service_performs_the_call_and_drops_its_first_reply(self) -> None:
        control("faults", {"drop_reply": "CreateVpc:1,CreateRole,CreateQueue,CreateFunction,"
                                         "CreateClusterV2,apigatewayv2:CreateApi,PutParameter,ec2:CreateRoute"})
        ec2, iam, sqs = self.no_retries("ec2"), self.no_retries("iam"), self.no_retries("sqs")
        lam, kafka, apigw, ssm = (self.no_retries(s) for s in ("lambda", "kafka", "apigatewayv2", "ssm"))
        tag = [{"ResourceType": "vpc", "Tags": [{"Key": "lost", "Value": "vpc"}]}]
        self.lost(lambda: ec2.create_vpc(CidrBlock="10.91.0.0/16", TagSpecifications=tag))
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:lost", "Values": ["vpc"]}])["Vpcs"]
        self.assertEqual(len(vpcs), 1, "the dropped CreateVpc made its VPC")
        # The count is spent: the next call answers.
        ec2.create_vpc(CidrBlock="10.92.0.0/16")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        self.lost(lambda: iam.create_role(RoleName="lost-role", AssumeRolePolicyDocument=trust))
        self.assertEqual(iam.get_role(RoleName="lost-role")["Role"]["RoleName"], "lost-role")
        self.assertEqual(error_code(lambda: iam.create_role(RoleName="lost-role", AssumeRolePolicyDocument=trust)),
                         "EntityAlreadyExists")
        self.lost(lambda: sqs.create_queue(QueueName="lost-queue"))
        self.assertIn("lost-queue", sqs.get_queue_url(QueueName="lost-queue")["QueueUrl"])
        self.lost(lambda: lam.create_function(
            FunctionName="lost-fn", Runtime="python3.11", Role=ROLE, Handler="handler.handler",
            Code={"ZipFile": function_zip()}))
        self.assertEqual(lam.get_function(FunctionName="lost-fn")["Configuration"]["FunctionName"], "lost-fn")
        self.lost(lambda: make_cluster_with(kafka, "lost-cluster"))
        names = [c["ClusterName"] for c in kafka.list_clusters_v2()["ClusterInfoList"]]
        self.assertIn("lost-cluster", names)
        self.lost(lambda: apigw.create_api(Name="lost-api", ProtocolType="HTTP"))
        self.assertIn("lost-api", [a["Name"] for a in apigw.get_apis()["Items"]])
        self.lost(lambda: ssm.put_parameter(Name="/lost/lock", Value="me", Type="String"))
        self.assertEqual(ssm.get_parameter(Name="/lost/lock")["Parameter"]["Value"], "me")
        # `ec2:CreateRoute` is EC2's: API Gateway's CreateRoute still answers.
        api = apigw.create_api(Name="lost-api-2", ProtocolType="HTTP")["ApiId"]
        apigw.create_route(ApiId=api, RouteKey="GET /x")
        seen = faults()
        self.assertEqual(seen["dropped"], [
            "ec2:CreateVpc", "iam:CreateRole", "sqs:CreateQueue", "lambda:CreateFunction",
            "kafka:CreateClusterV2", "apigatewayv2:CreateApi", "ssm:PutParameter"])
        self.assertEqual(seen["drop_reply"]["ec2:CreateRoute"], 1)

    def test_only_successful_replies_are_dropped(self) -> None:
        control("faults", {"drop_reply": {"CreateSecurityGroup": 1}})
        ec2 = self.no_retries("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.93.0.0/16")["Vpc"]["VpcId"]
        control("reset-faults")
        ec2.create_security_group(GroupName="lost-g", Description="d", VpcId=vpc)
        control("faults", {"drop_reply": {"CreateSecurityGroup": 1}})
        # Refused by EC2 (the name is taken): the error arrives and the drop stays due.
        self.assertEqual(error_code(lambda: ec2.create_security_group(
            GroupName="lost-g", Description="d", VpcId=vpc)), "InvalidGroup.Duplicate")
        self.lost(lambda: ec2.create_security_group(GroupName="lost-g2", Description="d", VpcId=vpc))
        groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["lost-g2"]}])
        self.assertEqual(len(groups["SecurityGroups"]), 1)
        self.assertEqual(faults()["dropped"], ["ec2:CreateSecurityGroup"])

    def test_hang_mode_times_the_client_out(self) -> None:
        control("faults", {"drop_reply": "CreateInternetGateway", "drop_reply_mode": "hang",
                           "drop_reply_hang_seconds": 1.5})
        ec2 = self.no_retries("ec2", read_timeout=0.5, connect_timeout=1)
        tag = [{"ResourceType": "internet-gateway", "Tags": [{"Key": "lost", "Value": "igw"}]}]
        started = time.monotonic()
        self.assertEqual(self.lost(lambda: ec2.create_internet_gateway(TagSpecifications=tag)), "ReadTimeoutError")
        self.assertLess(time.monotonic() - started, 1.4)
        made = ec2.describe_internet_gateways(Filters=[{"Name": "tag:lost", "Values": ["igw"]}])
        self.assertEqual(len(made["InternetGateways"]), 1)

    def test_error_mode_performs_the_call_and_answers_500_internal_error(self) -> None:
        control("faults", {"drop_reply": "CreateVpc,CreateRole,CreatePipe", "drop_reply_mode": "error"})
        ec2, iam = self.no_retries("ec2"), self.no_retries("iam")
        tag = [{"ResourceType": "vpc", "Tags": [{"Key": "lost", "Value": "vpc500"}]}]
        with self.assertRaises(ClientError) as raised:
            ec2.create_vpc(CidrBlock="10.94.0.0/16", TagSpecifications=tag)
        self.assertEqual(raised.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)
        self.assertEqual(raised.exception.response["Error"]["Code"], "InternalError")
        self.assertEqual(len(ec2.describe_vpcs(Filters=[{"Name": "tag:lost", "Values": ["vpc500"]}])["Vpcs"]), 1)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "pipes.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        with self.assertRaises(ClientError) as raised:
            iam.create_role(RoleName="role500", AssumeRolePolicyDocument=trust)
        self.assertEqual((raised.exception.response["ResponseMetadata"]["HTTPStatusCode"],
                          raised.exception.response["Error"]["Code"]), (500, "InternalError"))
        self.assertEqual(iam.get_role(RoleName="role500")["Role"]["RoleName"], "role500")
        pipes = self.no_retries("pipes")
        with self.assertRaises(ClientError) as raised:
            pipes.create_pipe(
                Name="pipe500", RoleArn=ROLE, Target="arn:aws:lambda:ap-northeast-1:123456789012:function:t",
                Source="arn:aws:kafka:ap-northeast-1:123456789012:cluster/p500/0e2f1c7a-1111-2222-3333-444455556666-s1",
                SourceParameters={"ManagedStreamingKafkaParameters": {"TopicName": "t"}})
        self.assertEqual((raised.exception.response["ResponseMetadata"]["HTTPStatusCode"],
                          raised.exception.response["Error"]["Code"]), (500, "InternalError"))
        self.assertEqual(pipes.describe_pipe(Name="pipe500")["Name"], "pipe500")
        self.assertEqual(faults()["dropped"], ["ec2:CreateVpc", "iam:CreateRole", "pipes:CreatePipe"])
        # The count is spent: the next create answers normally.
        ec2.create_vpc(CidrBlock="10.95.0.0/16")

    def test_random_rate_is_seeded_and_validated(self) -> None:
        control("faults", {"drop_reply_rate": 1.0, "drop_reply_seed": 7})
        sqs = self.no_retries("sqs")
        self.lost(lambda: sqs.list_queues())
        control("faults", {"drop_reply_rate": 0})
        sqs.list_queues()
        for bad in ({"drop_reply_rate": 2}, {"drop_reply": "Create Vpc"}, {"drop_reply_mode": "slow"},
                    {"drop_reply": {"CreateVpc": 0}}):
            with self.assertRaises(urllib.error.HTTPError, msg=str(bad)) as raised:
                control("faults", bad)
            self.assertEqual(raised.exception.code, 400)
        control("reset-faults")
        self.assertEqual(faults()["dropped"], [])
        self.assertEqual(faults()["drop_reply_rate"], 0.0)


class ClientTokenTest(EmulatorTest):
    def test_route_tables_and_vpc_endpoints_honour_client_tokens(self) -> None:
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.94.0.0/16")["Vpc"]["VpcId"]
        first = ec2.create_route_table(VpcId=vpc, ClientToken="rt-1")["RouteTable"]["RouteTableId"]
        self.assertEqual(ec2.create_route_table(VpcId=vpc, ClientToken="rt-1")["RouteTable"]["RouteTableId"], first)
        self.assertNotEqual(ec2.create_route_table(VpcId=vpc, ClientToken="rt-2")["RouteTable"]["RouteTableId"], first)
        other = ec2.create_vpc(CidrBlock="10.95.0.0/16")["Vpc"]["VpcId"]
        self.assertEqual(error_code(lambda: ec2.create_route_table(VpcId=other, ClientToken="rt-1")),
                         "IdempotentParameterMismatch")
        make = lambda token: ec2.create_vpc_endpoint(
            VpcId=vpc, ServiceName="com.amazonaws.ap-northeast-1.s3", VpcEndpointType="Gateway",
            RouteTableIds=[first], ClientToken=token)["VpcEndpoint"]["VpcEndpointId"]
        endpoint = make("vpce-1")
        self.assertEqual(make("vpce-1"), endpoint)
        self.assertEqual(len(ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]), 1)


def make_cluster_with(kafka, name: str) -> str:
    return kafka.create_cluster_v2(
        ClusterName=name,
        Serverless={"VpcConfigs": [{"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}],
                    "ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}},
    )["ClusterArn"]


class PollerEniTest(EmulatorTest):
    """pollers.py: interfaces of MSK Serverless clusters, Kafka event source mappings and pipes in
    the customer's subnets and groups, lingering after their owner."""

    def setUp(self) -> None:
        # Long enough for the few calls each phase makes on a loaded machine; reset in tearDown.
        control("faults", {"delays": {"poller_eni_linger": 3.0}})

    def tearDown(self) -> None:
        control("reset-faults")

    def network(self, cidr: str, groups: int = 1) -> tuple[list[str], list[str]]:
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        base = cidr.split(".")[:2]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=".".join(base + [str(i), "0/24"]),
                              AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
            for i, zone in ((1, "a"), (2, "c"))
        ]
        sgs = [ec2.create_security_group(GroupName=f"g{i}-{vpc}", Description="g", VpcId=vpc)["GroupId"]
               for i in range(groups)]
        return subnets, sgs

    def enis(self, prefix: str) -> list[tuple[str, list[str], str, str, bool]]:
        """(subnet, groups, status, interface type, requester-managed) of the interfaces whose
        Description starts with `prefix`, sorted."""
        return sorted(
            (e["SubnetId"], [g["GroupId"] for g in e["Groups"]], e["Status"], e["InterfaceType"], e["RequesterManaged"])
            for e in client("ec2").describe_network_interfaces()["NetworkInterfaces"]
            if e["Description"].startswith(prefix))

    def blocked(self, call) -> bool:
        try:
            call()
        except ClientError as error:
            self.assertEqual(error.response["Error"]["Code"], "DependencyViolation")
            return True
        return False

    def serverless(self, name: str, subnets: list[str], sgs: list[str]) -> str:
        return client("kafka").create_cluster_v2(
            ClusterName=name, Serverless={"VpcConfigs": [{"SubnetIds": subnets, "SecurityGroupIds": sgs}],
                                          "ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}},
        )["ClusterArn"]

    def test_msk_serverless_cluster_interfaces_outlive_the_cluster(self) -> None:
        ec2, kafka = client("ec2"), client("kafka")
        (a, c), (sg,) = self.network("10.96.0.0/16")
        arn = self.serverless("eni-cluster", [a, c], [sg])
        prefix = "MSK Serverless ENI for cluster eni-cluster-"
        self.assertEqual(self.enis(prefix), sorted([(a, [sg], "in-use", "interface", True),
                                                    (c, [sg], "in-use", "interface", True)]))
        self.assertTrue(self.blocked(lambda: ec2.delete_security_group(GroupId=sg)))
        kafka.delete_cluster(ClusterArn=arn)

        def cluster_gone() -> bool:
            try:
                kafka.describe_cluster_v2(ClusterArn=arn)
                return False
            except ClientError:
                return True

        wait_for(cluster_gone, True)
        # Gone from MSK, its interfaces are still there (detached) and still block.
        self.assertEqual([s for s, _, status, _, _ in self.enis(prefix) if status == "available"], sorted([a, c]))
        self.assertTrue(self.blocked(lambda: ec2.delete_subnet(SubnetId=a)))
        self.assertTrue(self.blocked(lambda: ec2.delete_security_group(GroupId=sg)))
        wait_for(lambda: self.enis(prefix), [], timeout=10)
        ec2.delete_subnet(SubnetId=a)
        ec2.delete_security_group(GroupId=sg)

    def test_msk_mapping_and_pipe_pollers_use_the_clusters_subnets_and_groups(self) -> None:
        lam, pipes = client("lambda"), client("pipes")
        (a, c), (sg,) = self.network("10.97.0.0/16")
        cluster = self.serverless("eni-src", [a, c], [sg])
        make_function("eni-msk-fn")
        uuid = lam.create_event_source_mapping(
            FunctionName="eni-msk-fn", EventSourceArn=cluster, Topics=["orders"], StartingPosition="LATEST",
        )["UUID"]
        pipes.create_pipe(
            Name="eni-pipe", RoleArn=ROLE, Source=cluster, Target="arn:aws:lambda:ap-northeast-1:123456789012:function:eni-msk-fn",
            SourceParameters={"ManagedStreamingKafkaParameters": {"TopicName": "orders", "StartingPosition": "LATEST"}},
        )
        both = sorted([a, c])
        self.assertEqual(self.enis("AWS Lambda VPC ENI-eni-msk-fn-"),
                         sorted([(s, [sg], "in-use", "lambda", True) for s in both]))
        self.assertEqual(self.enis("AWS EventBridge Pipes ENI-eni-pipe-"),
                         sorted([(s, [sg], "in-use", "interface", True) for s in both]))
        wait_for(lambda: lam.get_event_source_mapping(UUID=uuid)["State"], "Enabled")
        wait_for(lambda: pipes.describe_pipe(Name="eni-pipe")["CurrentState"], "RUNNING")
        lam.delete_event_source_mapping(UUID=uuid)
        pipes.delete_pipe(Name="eni-pipe")
        self.assertEqual([st for _, _, st, _, _ in self.enis("AWS Lambda VPC ENI-eni-msk-fn-")], ["available"] * 2)
        self.assertEqual([st for _, _, st, _, _ in self.enis("AWS EventBridge Pipes ENI-eni-pipe-")], ["available"] * 2)
        wait_for(lambda: self.enis("AWS Lambda VPC ENI-eni-msk-fn-") + self.enis("AWS EventBridge Pipes ENI-eni-pipe-"),
                 [], timeout=10)
        # The cluster's own interfaces stay while it lives.
        self.assertEqual(len(self.enis("MSK Serverless ENI for cluster eni-src-")), 2)
        client("kafka").delete_cluster(ClusterArn=cluster)

    def test_self_managed_mapping_interfaces_follow_its_access_configuration(self) -> None:
        ec2, lam = client("ec2"), client("lambda")
        (a, _), (sg, sg2) = self.network("10.98.0.0/16", groups=2)
        make_function("eni-smk-fn")
        access = lambda group: [{"Type": "VPC_SUBNET", "URI": f"subnet:{a}"},
                                {"Type": "VPC_SECURITY_GROUP", "URI": f"security_group:{group}"},
                                {"Type": "SASL_SCRAM_512_AUTH", "URI": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:s"}]
        uuid = lam.create_event_source_mapping(
            FunctionName="eni-smk-fn", Topics=["orders"], StartingPosition="LATEST",
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka-1.example.internal:9096"]}},
            SourceAccessConfigurations=access(sg),
        )["UUID"]
        prefix = "AWS Lambda VPC ENI-eni-smk-fn-"
        self.assertEqual(self.enis(prefix), [(a, [sg], "in-use", "lambda", True)])
        wait_for(lambda: lam.get_event_source_mapping(UUID=uuid)["State"], "Enabled")
        # Another group: a new interface at once; the old one lingers in the old group.
        lam.update_event_source_mapping(UUID=uuid, SourceAccessConfigurations=access(sg2))
        self.assertEqual(self.enis(prefix), sorted([(a, [sg], "available", "lambda", True),
                                                    (a, [sg2], "in-use", "lambda", True)]))
        self.assertTrue(self.blocked(lambda: ec2.delete_security_group(GroupId=sg)))
        wait_for(lambda: self.blocked(lambda: ec2.delete_security_group(GroupId=sg)), False, timeout=10)
        wait_for(lambda: lam.get_event_source_mapping(UUID=uuid)["State"], "Enabled")
        lam.delete_event_source_mapping(UUID=uuid)
        self.assertTrue(self.blocked(lambda: ec2.delete_security_group(GroupId=sg2)))
        self.assertTrue(self.blocked(lambda: ec2.delete_subnet(SubnetId=a)))
        wait_for(lambda: self.enis(prefix), [], timeout=10)
        ec2.delete_security_group(GroupId=sg2)
        ec2.delete_subnet(SubnetId=a)
