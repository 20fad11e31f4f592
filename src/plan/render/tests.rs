//! Snapshot tests of what a reviewer reads: plans built as plain values (no planner, no AWS)
//! rendered as text and as JSON, compared exactly with the files in `snapshots/`. After an
//! intended change, `MSKCTL_UPDATE_SNAPSHOTS=1 cargo test --bin mskctl render::tests`
//! rewrites them; review the diff like code.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::model::Observed;
use crate::plan::Live;

const PLACE: &str = "ap-northeast-1 (account 123456789012)";

#[track_caller]
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/plan/render/snapshots")
        .join(name);
    if std::env::var_os("MSKCTL_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with MSKCTL_UPDATE_SNAPSHOTS=1 to write it:\n{actual}",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its snapshot.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

fn live(
    kind: &'static str,
    id: &str,
    physical: &str,
    props: Value,
    attrs: &[(&str, &str)],
) -> Live {
    let props = match props {
        Value::Object(m) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    Live {
        kind,
        observed: Observed {
            id: id.into(),
            physical_id: physical.into(),
            props,
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    }
}

fn attr(path: &str, before: Option<Value>, after: Option<Val>) -> AttrChange {
    AttrChange {
        path: path.into(),
        before,
        after,
        forces_replacement: false,
        sensitive: false,
    }
}

fn known(v: Value) -> Option<Val> {
    Some(Val::Known(v))
}

fn unknown(id: &str, attr: &str) -> Val {
    Val::Unknown(Expr::Ref {
        id: id.into(),
        attr: attr.into(),
    })
}

fn change(id: &str, kind: &'static str, action: Action, attrs: Vec<AttrChange>) -> Change {
    Change {
        id: id.into(),
        kind,
        action,
        attrs,
        warnings: Vec::new(),
        live: None,
        desired: None,
        create_first: false,
        detach: None,
    }
}

fn noop(l: Live) -> Change {
    Change {
        live: Some(l.clone()),
        ..change(&l.observed.id, l.kind, Action::NoOp, Vec::new())
    }
}

fn vpc() -> Live {
    live(
        "vpc",
        "vpc",
        "vpc-0a1b2c3d",
        json!({"cidr_block": "10.10.0.0/16"}),
        &[("id", "vpc-0a1b2c3d")],
    )
}

fn private_a() -> Live {
    live(
        "subnet",
        "private_a",
        "subnet-0ab12345",
        json!({"cidr_block": "10.10.0.0/26", "vpc": "vpc-0a1b2c3d"}),
        &[("id", "subnet-0ab12345")],
    )
}

fn queue() -> Live {
    live(
        "sqs_queue",
        "dlq",
        "https://sqs.ap-northeast-1.amazonaws.com/123456789012/demo-dlq",
        json!({"name": "demo-dlq"}),
        &[
            ("arn", "arn:aws:sqs:ap-northeast-1:123456789012:demo-dlq"),
            (
                "url",
                "https://sqs.ap-northeast-1.amazonaws.com/123456789012/demo-dlq",
            ),
        ],
    )
}

/// Two new resources next to live ones: references to live resources by name and id, to new
/// ones as known after apply, a long list folded, a secret masked.
fn create_plan() -> Plan {
    let subnets = Val::List(vec![
        Val::Known(json!("subnet-0ab12345")),
        unknown("private_c", "id"),
    ]);
    let mut secret = attr("secret_password", None, known(json!("hunter2")));
    secret.sensitive = true;
    Plan {
        changes: vec![
            noop(vpc()),
            noop(private_a()),
            change(
                "private_c",
                "subnet",
                Action::Create,
                vec![
                    attr("availability_zone", None, known(json!("ap-northeast-1c"))),
                    attr("cidr_block", None, known(json!("10.10.0.64/26"))),
                    attr("vpc", None, known(json!("vpc-0a1b2c3d"))),
                ],
            ),
            change(
                "cluster",
                "msk_serverless_cluster",
                Action::Create,
                vec![
                    attr("name", None, known(json!("demo-cluster"))),
                    attr(
                        "security_groups",
                        None,
                        Some(Val::List(vec![unknown("msk_sg", "id")])),
                    ),
                    attr("subnets", None, Some(subnets)),
                    attr(
                        "client_subnets_note",
                        None,
                        known(json!([
                            "a long value that does not fit on one line",
                            "so it is folded one item per line",
                            "like this"
                        ])),
                    ),
                    secret,
                    attr(
                        "role_arn",
                        None,
                        Some(Val::Unknown(Expr::Str(vec![
                            Part::Lit("arn:aws:iam::123456789012:role/mskctl/".into()),
                            Part::Ref {
                                id: "role".into(),
                                attr: "name".into(),
                            },
                        ]))),
                    ),
                ],
            ),
        ],
        ..Plan::default()
    }
}

fn policy(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// In-place changes: tags, a scalar, a policy document changed statement by statement.
fn update_plan() -> Plan {
    let read = |actions: Value, resource: &str| json!({"Sid": "ReadQueue", "Effect": "Allow", "Action": actions, "Resource": resource});
    let arn = "arn:aws:sqs:ap-northeast-1:123456789012:demo-dlq";
    let logs = json!({"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"});
    let before = json!({
        "consume": policy(json!([read(json!(["sqs:ReceiveMessage"]), arn), logs])),
        "keep": policy(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])),
    });
    let after = json!({
        "consume": policy(json!([
            read(json!(["sqs:ReceiveMessage", "sqs:DeleteMessage"]), arn),
            logs,
            {"Effect": "Allow", "Action": "kafka-cluster:Connect", "Resource": "*"}
        ])),
        "keep": policy(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])),
    });
    let role = live(
        "iam_role",
        "role",
        "demo-role",
        json!({"policies": before.clone()}),
        &[(
            "arn",
            "arn:aws:iam::123456789012:role/mskctl/demo/demo-role",
        )],
    );
    let mut role_change = change(
        "role",
        "iam_role",
        Action::Update,
        vec![
            attr("policies", Some(before), known(after)),
            attr(
                "tags",
                Some(json!({"team": "ops", "mskctl:stack": "demo"})),
                known(json!({"team": "data", "mskctl:stack": "demo", "cost": "kafka"})),
            ),
        ],
    );
    role_change.live = Some(role);
    let mut fn_change = change(
        "fn",
        "lambda_function",
        Action::Update,
        vec![
            attr("memory_size", Some(json!(256)), known(json!(512))),
            attr(
                "dead_letter_queue",
                Some(Value::Null),
                known(json!("arn:aws:sqs:ap-northeast-1:123456789012:demo-dlq")),
            ),
        ],
    );
    fn_change.live = Some(live(
        "lambda_function",
        "fn",
        "demo-fn",
        json!({}),
        &[(
            "arn",
            "arn:aws:lambda:ap-northeast-1:123456789012:function:demo-fn",
        )],
    ));
    Plan {
        changes: vec![noop(queue()), role_change, fn_change],
        ..Plan::default()
    }
}

/// A subnet replaced because its CIDR cannot change in place (create before destroy: the new
/// block is disjoint), and a pipe replaced (destroy then create) with a warning; every line of
/// a forcing attribute says so.
fn replace_plan() -> Plan {
    let mut cidr = attr(
        "cidr_block",
        Some(json!("10.10.0.0/26")),
        known(json!("10.10.0.128/26")),
    );
    cidr.forces_replacement = true;
    let mut subnet = change(
        "private_a",
        "subnet",
        Action::Replace,
        vec![
            cidr,
            attr(
                "tags",
                Some(json!({"Name": "old"})),
                known(json!({"Name": "new"})),
            ),
        ],
    );
    subnet.live = Some(private_a());
    subnet.create_first = true;
    let mut sources = attr(
        "source_subnets",
        Some(json!(["subnet-0ab12345", "subnet-0ff99999"])),
        Some(Val::List(vec![
            unknown("private_a", "id"),
            Val::Known(json!("subnet-0ff99999")),
        ])),
    );
    sources.forces_replacement = true;
    let mut pipe = change("pipe", "pipe", Action::Replace, vec![sources]);
    pipe.warnings.push(
        "the new pipe starts a new Kafka consumer group and loses the committed offsets of the old one"
            .into(),
    );
    pipe.live = Some(live(
        "pipe",
        "pipe",
        "demo-pipe",
        json!({}),
        &[(
            "arn",
            "arn:aws:pipes:ap-northeast-1:123456789012:pipe/demo-pipe",
        )],
    ));
    Plan {
        changes: vec![noop(vpc()), subnet, pipe],
        ..Plan::default()
    }
}

fn delete_plan() -> Plan {
    let deletion = |l: Live| Change {
        live: Some(l.clone()),
        ..change(&l.observed.id, l.kind, Action::Delete, Vec::new())
    };
    Plan {
        changes: vec![deletion(private_a()), deletion(queue()), noop(vpc())],
        ..Plan::default()
    }
}

fn noop_plan() -> Plan {
    Plan {
        changes: vec![noop(vpc()), noop(private_a())],
        ..Plan::default()
    }
}

fn check(name: &str, plan: &Plan) {
    let text = render(plan, "demo", PLACE);
    assert!(!text.contains('\u{1b}'), "no colour codes: {text}");
    assert!(!text.contains('\u{0}'), "no internal markers: {text}");
    snapshot(&format!("{name}.txt"), &text);
    let json = render_json_in(plan, "demo", "ap-northeast-1", Some("123456789012")) + "\n";
    assert!(!json.contains("\\u0000"), "no internal markers: {json}");
    snapshot(&format!("{name}.json"), &json);
}

#[test]
fn create_plan_snapshot() {
    check("create", &create_plan());
}

#[test]
fn update_plan_snapshot() {
    check("update", &update_plan());
}

#[test]
fn replace_plan_snapshot() {
    check("replace", &replace_plan());
}

#[test]
fn delete_plan_snapshot() {
    check("delete", &delete_plan());
}

#[test]
fn noop_plan_snapshot() {
    check("noop", &noop_plan());
}

#[test]
fn references_show_the_logical_name_beside_the_id() {
    let text = render(&create_plan(), "demo", PLACE);
    assert!(
        text.contains("subnets")
            && text.contains("[private_a (subnet-0ab12345), private_c (known after apply)]"),
        "{text}"
    );
    assert!(
        text.contains("vpc               = vpc (vpc-0a1b2c3d)"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn policy_changes_name_their_statement_with_its_actions_and_resources() {
    let text = render(&update_plan(), "demo", PLACE);
    assert!(text.contains("~ statement \"ReadQueue\""), "{text}");
    assert!(text.contains("+ statement #3"), "{text}");
    assert!(text.contains("+     \"sqs:DeleteMessage\""), "{text}");
    // The changed statement's resource line is shown with it.
    assert!(text.contains("\"Resource\": dlq (arn:aws:sqs:"), "{text}");
    assert!(
        !text.contains("keep"),
        "unchanged documents are not shown: {text}"
    );
    assert!(
        !text.contains("logs:PutLogEvents"),
        "unchanged statements are not shown: {text}"
    );
}

#[test]
fn every_line_of_a_forcing_attribute_says_it_forces_the_replacement() {
    let text = render(&replace_plan(), "demo", PLACE);
    assert!(
        text.contains(
            "+/- private_a (subnet) [subnet-0ab12345] must be replaced (forced by `cidr_block`), create before destroy"
        ),
        "{text}"
    );
    assert!(
        text.contains("-/+ pipe (pipe) [demo-pipe] must be replaced (forced by `source_subnets`), destroy then create"),
        "{text}"
    );
    for line in text
        .lines()
        .filter(|l| l.contains("subnet-0ff99999") || l.contains("private_a (known after apply)"))
    {
        assert!(
            line.ends_with("# forces replacement (source_subnets)"),
            "{line}"
        );
    }
    let tags = text.lines().find(|l| l.contains("~ tags")).unwrap();
    assert!(!tags.contains("forces"), "{tags}");
}

#[test]
fn json_plan_carries_references_forcing_attributes_and_where() {
    let doc = plan_json_in(
        &replace_plan(),
        "demo",
        "ap-northeast-1",
        Some("123456789012"),
    );
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["account_id"], "123456789012");
    let pipe = &doc["changes"][1];
    assert_eq!(pipe["replace_forced_by"], json!(["source_subnets"]));
    assert_eq!(pipe["replace_order"], "destroy_before_create");
    assert_eq!(doc["changes"][0]["replace_order"], "create_before_destroy");
    let refs = &pipe["attributes"][0]["references"];
    assert_eq!(refs[0]["id"], "private_a");
    assert_eq!(refs[0]["known"], false);
    let doc = plan_json_in(&create_plan(), "demo", "r", None);
    let cluster = &doc["changes"][1];
    let subnets = cluster["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == "subnets")
        .unwrap();
    assert_eq!(subnets["references"][0]["id"], "private_a");
    assert_eq!(subnets["references"][0]["value"], "subnet-0ab12345");
    assert_eq!(subnets["references"][1]["at"], "subnets[1]");
}
