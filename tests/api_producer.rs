//! The seed-004 example, `stacks/msk-api-producer.yaml`, end to end on the emulator and its
//! Kafka broker: apply creates the topic through the topic-admin function, a SigV4-signed
//! POST to the API reaches the producer function, whose record is then read back from the
//! broker with an independent Kafka client and consumed by the event source mapping (its
//! consumer group commits past it); an unsigned request is refused; the re-plan is clean;
//! destroy deletes the topic and everything else.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Emulator, StackDir, repo_path};
use serde_json::{Value, json};

fn python(venv: &str) -> String {
    let p = repo_path(&format!(".venv/{venv}/bin/python"));
    assert!(
        Path::new(&p).exists(),
        "{p} is missing: run scripts/test (or scripts/emulator-setup and scripts/functions-setup)"
    );
    p
}

/// Run a Python snippet that prints one JSON value as its last line.
fn py(venv: &str, script: &str, args: &[&str]) -> Value {
    let out = Command::new(python(venv))
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim().lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// POST `body` to `url`, SigV4-signed for execute-api with the emulator's credentials when
/// `signed`; returns {"status", "body"}.
fn post(url: &str, body: &str, signed: bool) -> Value {
    let script = r#"
import json, sys, urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, body, signed = sys.argv[1], sys.argv[2].encode(), sys.argv[3] == "1"
headers = {"Content-Type": "text/plain"}
if signed:
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials("test", "test"), "execute-api", "ap-northeast-1").add_auth(req)
    headers = dict(req.headers)
try:
    resp = urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers, method="POST"), timeout=60)
    print(json.dumps({"status": resp.status, "body": resp.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
"#;
    py(
        "emulator",
        script,
        &[url, body, if signed { "1" } else { "0" }],
    )
}

/// Topic facts from the broker, with kafka-python (independent of mskctl and the handlers).
fn broker(bootstrap: &str, script: &str) -> Value {
    let prelude = r#"
import json, sys
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.protocol.admin import DescribeConfigsRequest
BOOT = sys.argv[1]
def admin():
    return KafkaAdminClient(bootstrap_servers=BOOT, request_timeout_ms=10000)
def topics():
    return sorted(t for t in admin().list_topics() if not t.startswith("__"))
def partitions(topic):
    return len(admin().describe_topics([topic])[0]["partitions"])
def configs(topic):
    m = admin()._manager
    r = m.run(m.send, DescribeConfigsRequest(resources=[(2, topic, None)], include_synonyms=False))
    return {c.name: c.value for c in r.results[0].configs}
def record(topic, partition, offset):
    c = KafkaConsumer(bootstrap_servers=BOOT, enable_auto_commit=False, consumer_timeout_ms=10000)
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    c.seek(tp, offset)
    for r in c:
        return r.value.decode()
    return None
"#;
    py("functions", &format!("{prelude}\n{script}"), &[bootstrap])
}

fn copy_dir(from: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("test_") || name == "__pycache__" || name.ends_with(".md") {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path().to_string_lossy(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn the_producer_example_round_trips_through_api_function_and_broker() {
    let emu = Emulator::start();
    let boot = emu.kafka_bootstrap();
    let dir = StackDir::new();
    for f in ["topic_admin", "producer", "msk_processor"] {
        copy_dir(
            &repo_path(&format!("stacks/functions/{f}")),
            &dir.dir.path().join("functions").join(f),
        );
    }
    let text = std::fs::read_to_string(repo_path("stacks/msk-api-producer.yaml")).unwrap();
    let file = dir.write("msk-api-producer.yaml", &text);

    let out = emu
        .run(&["apply", "-f", &file, "--auto-approve", "--json"])
        .ok();
    let outputs = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("outputs").cloned())
        .unwrap_or_else(|| panic!("no outputs in:\n{}", out.all()));
    let invoke_url = outputs["invoke_url"].as_str().unwrap().to_string();
    assert_eq!(outputs["topic"], "orders");
    assert!(
        outputs["topic_arn"]
            .as_str()
            .unwrap()
            .contains(":topic/msk-api-producer"),
        "{outputs}"
    );

    // The topic, as declared, on the broker.
    assert_eq!(
        broker(&boot, "print(json.dumps(topics()))"),
        json!(["orders"])
    );
    assert_eq!(broker(&boot, "print(partitions('orders'))"), 3);
    let configs = broker(&boot, "print(json.dumps(configs('orders')))");
    assert_eq!(configs["retention.ms"], "604800000", "{configs}");
    assert_eq!(configs["max.message.bytes"], "1048588", "{configs}");

    // A signed request is produced to the topic; the record is on the broker.
    let url = emu.execute_api_url(&invoke_url, "/messages");
    let reply = post(&url, "order 42: 3 apples", true);
    assert_eq!(reply["status"], 200, "{reply}");
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["topic"], "orders", "{body}");
    let (partition, offset) = (
        body["partition"].as_i64().unwrap(),
        body["offset"].as_i64().unwrap(),
    );
    let record = broker(
        &boot,
        &format!("print(json.dumps(record('orders', {partition}, {offset})))"),
    );
    assert_eq!(record, "order 42: 3 apples");

    // The consumer: the event source mapping hands the record to its function and commits
    // the mapping's consumer group past it (read from the broker).
    let committed = || {
        broker(
            &boot,
            &format!(
                "o = admin().list_group_offsets('msk-api-consumer').get('msk-api-consumer', {{}})\n\
                 print(json.dumps(max([m.offset for tp, m in o.items() if tp.topic == 'orders' and tp.partition == {partition}] or [-1])))"
            ),
        )
        .as_i64()
        .unwrap_or(-1)
    };
    assert!(
        common::eventually(std::time::Duration::from_secs(60), || committed() > offset),
        "the consumer group never committed past offset {offset} (last: {})",
        committed()
    );

    // Unsigned: API Gateway refuses it before the function runs.
    let refused = post(&url, "not signed", false);
    assert_eq!(refused["status"], 403, "{refused}");

    emu.plan_exits(&file, 0);

    // Destroy: the topic goes first (its function is still there to delete it), then the rest.
    let out = emu.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(
        common::flat(&out.all()).contains("deletes every record"),
        "{}",
        out.all()
    );
    assert_eq!(broker(&boot, "print(json.dumps(topics()))"), json!([]));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sdk = emu.sdk().await;
        let functions = aws_sdk_lambda::Client::new(&sdk)
            .list_functions()
            .send()
            .await
            .unwrap();
        assert!(functions.functions().is_empty(), "{functions:?}");
        let apis = aws_sdk_apigatewayv2::Client::new(&sdk)
            .get_apis()
            .send()
            .await
            .unwrap();
        assert!(apis.items().is_empty(), "{apis:?}");
        let records = aws_sdk_ssm::Client::new(&sdk)
            .get_parameters_by_path()
            .path("/mskctl/")
            .recursive(true)
            .send()
            .await
            .unwrap();
        assert!(records.parameters().is_empty(), "{records:?}");
    });
}
