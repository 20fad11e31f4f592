//! The seed-004 example, `stacks/msk-api-producer.yaml`, end to end on the emulator and its
//! Kafka broker: apply creates the topic through the topic-admin function, a SigV4-signed
//! POST to the API reaches the producer function, whose record is then read back from the
//! broker with an independent Kafka client and consumed by the event source mapping (its
//! consumer group commits past it); an unsigned request is refused; the re-plan is clean;
//! destroy deletes the topic and everything else.

mod common;

use common::{Emulator, StackDir, kafka, repo_path};
use serde_json::{Value, json};

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
    common::python_json(
        "emulator",
        script,
        &[url, body, if signed { "1" } else { "0" }],
    )
}

#[test]
fn the_producer_example_round_trips_through_api_function_and_kafka() {
    let emu = Emulator::start();
    let boot = emu.kafka_bootstrap();
    let dir = StackDir::new();
    for f in ["topic_admin", "producer", "msk_processor"] {
        common::copy_function(f, &dir.dir.path().join("functions").join(f));
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
        kafka(&boot, "print(json.dumps(topics()))"),
        json!(["orders"])
    );
    assert_eq!(kafka(&boot, "print(partitions('orders'))"), 3);
    let configs = kafka(&boot, "print(json.dumps(configs('orders')))");
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
    let record = kafka(
        &boot,
        &format!("print(json.dumps(record('orders', {partition}, {offset})))"),
    );
    assert_eq!(record, "order 42: 3 apples");

    // The consumer: the event source mapping hands the record to its function and commits
    // the mapping's consumer group past it (read from the broker).
    let committed = || {
        kafka(
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
    assert_eq!(kafka(&boot, "print(json.dumps(topics()))"), json!([]));
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
