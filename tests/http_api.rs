//! An HTTP API in front of a Lambda function, end to end against the local emulator and
//! checked through the SDK: created with an `AWS_IAM` route and the invoke permission, the
//! invoke URL as an output, a clean re-plan, a route changed in place on the same API, a
//! route deleted out of band shown and repaired, and destroy leaving no API and no permission.

mod common;

use common::{Emulator, Run, StackDir, step};

const STACK: &str = r#"
stack: httpapi
region: ap-northeast-1
resources:
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
    managed_policy_arns:
      - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
  producer:
    type: lambda_function
    code: functions/msk_processor
    handler: msk_processor.lambda_handler
    runtime: python3.12
    role: role
  api:
    type: http_api
    routes:
      - route: POST /messages
        function: producer
outputs:
  url: ${api.invoke_url}
"#;

const FUNCTION: &str = "httpapi-producer";

struct Scenario {
    em: Emulator,
    _dir: StackDir,
    file: String,
    apigw: aws_sdk_apigatewayv2::Client,
    lambda: aws_sdk_lambda::Client,
}

/// What AWS holds: the API id and endpoint, its routes as (key, authorization), and whether
/// the function's policy grants API Gateway this API.
#[derive(Debug, PartialEq)]
struct Live {
    api_id: String,
    endpoint: String,
    routes: Vec<(String, String)>,
    permitted: bool,
}

impl Scenario {
    fn apply(&self) -> Run {
        self.em.apply(&self.file)
    }

    #[track_caller]
    fn plan(&self, code: i32) -> Run {
        self.em.plan_exits(&self.file, code)
    }

    fn edit(&self, from: &str, to: &str) {
        common::edit(&self.file, from, to)
    }

    /// The stack's APIs, straight from API Gateway.
    async fn apis(&self) -> Vec<aws_sdk_apigatewayv2::types::Api> {
        self.apigw
            .get_apis()
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                a.tags()
                    .and_then(|t| t.get("mskctl:stack"))
                    .is_some_and(|s| s == "httpapi")
            })
            .collect()
    }

    async fn permitted(&self, api_id: &str) -> bool {
        match self
            .lambda
            .get_policy()
            .function_name(FUNCTION)
            .send()
            .await
        {
            Ok(out) => {
                let policy: serde_json::Value =
                    serde_json::from_str(out.policy().unwrap_or("{}")).unwrap();
                policy["Statement"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| {
                        s["Sid"] == format!("mskctl-{api_id}").as_str()
                            && s["Principal"]["Service"] == "apigateway.amazonaws.com"
                            && s["Condition"].to_string().contains(api_id)
                    })
            }
            Err(_) => false,
        }
    }

    async fn live(&self) -> Live {
        let apis = self.apis().await;
        assert_eq!(apis.len(), 1, "{apis:?}");
        let api_id = apis[0].api_id().unwrap().to_string();
        let mut routes: Vec<(String, String)> = self
            .apigw
            .get_routes()
            .api_id(&api_id)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                (
                    r.route_key().unwrap().to_string(),
                    r.authorization_type()
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect();
        routes.sort();
        Live {
            endpoint: apis[0].api_endpoint().unwrap().to_string(),
            permitted: self.permitted(&api_id).await,
            api_id,
            routes,
        }
    }
}

fn routes(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, a)| (k.to_string(), a.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_api_applies_changes_in_place_repairs_drift_and_destroys() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", STACK);
    let conf = em.sdk().await;
    let s = Scenario {
        apigw: aws_sdk_apigatewayv2::Client::new(&conf),
        lambda: aws_sdk_lambda::Client::new(&conf),
        em,
        _dir: dir,
        file,
    };

    let api_id = step(
        "apply creates the API with an AWS_IAM route, the permission and the invoke URL",
        async {
            s.apply();
            let live = s.live().await;
            assert_eq!(live.routes, routes(&[("POST /messages", "AWS_IAM")]));
            assert!(live.permitted, "no invoke permission for {}", live.api_id);
            let stages = s
                .apigw
                .get_stages()
                .api_id(&live.api_id)
                .send()
                .await
                .unwrap();
            let stage = &stages.items()[0];
            assert_eq!(
                (stage.stage_name(), stage.auto_deploy()),
                (Some("$default"), Some(true))
            );
            let outputs = s.em.run(&["outputs", "-f", &s.file]).ok();
            assert!(
                outputs.stdout.contains(&format!("{}/", live.endpoint)),
                "{}",
                outputs.all()
            );
            s.plan(0);
            live.api_id
        },
    )
    .await;

    step(
        "a route changed and one added in place, on the same API",
        async {
            s.edit(
                "        function: producer\n",
                "        function: producer\n        authorization: NONE\n      - route: GET /health\n        function: producer\n",
            );
            let plan = s.plan(2);
            assert!(
                plan.stdout.contains("routes")
                    && plan
                        .stdout
                        .contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
                "{}",
                plan.all()
            );
            s.apply();
            let live = s.live().await;
            assert_eq!(live.api_id, api_id);
            assert_eq!(
                live.routes,
                routes(&[("GET /health", "AWS_IAM"), ("POST /messages", "NONE")])
            );
            assert!(live.permitted);
            s.plan(0);
        },
    )
    .await;

    step(
        "drift: a route deleted out of band is shown and repaired",
        async {
            let route = s
                .apigw
                .get_routes()
                .api_id(&api_id)
                .send()
                .await
                .unwrap()
                .items
                .unwrap_or_default()
                .into_iter()
                .find(|r| r.route_key() == Some("GET /health"))
                .unwrap();
            s.apigw
                .delete_route()
                .api_id(&api_id)
                .route_id(route.route_id().unwrap())
                .send()
                .await
                .unwrap();
            let plan = s.plan(2);
            assert!(
                plan.stdout.contains("GET /health") && plan.stdout.contains("1 to change"),
                "{}",
                plan.all()
            );
            s.apply();
            let live = s.live().await;
            assert_eq!(
                (live.api_id.as_str(), live.routes),
                (
                    api_id.as_str(),
                    routes(&[("GET /health", "AWS_IAM"), ("POST /messages", "NONE")])
                )
            );
            s.plan(0);
        },
    )
    .await;

    step(
        "drift: the invoke permission removed out of band is shown and added back",
        async {
            s.lambda
                .remove_permission()
                .function_name(FUNCTION)
                .statement_id(format!("mskctl-{api_id}"))
                .send()
                .await
                .unwrap();
            let plan = s.plan(2);
            assert!(
                plan.stdout.contains("no permission for API Gateway"),
                "{}",
                plan.all()
            );
            s.apply();
            assert!(s.permitted(&api_id).await);
            s.plan(0);
        },
    )
    .await;

    step(
        "drift: the stage deleted out of band is created again",
        async {
            s.apigw
                .delete_stage()
                .api_id(&api_id)
                .stage_name("$default")
                .send()
                .await
                .unwrap();
            let plan = s.plan(2);
            assert!(
                plan.stdout.contains("stage") && plan.stdout.contains("1 to change"),
                "{}",
                plan.all()
            );
            s.apply();
            let stages = s.apigw.get_stages().api_id(&api_id).send().await.unwrap();
            let names: Vec<_> = stages
                .items()
                .iter()
                .filter_map(|s| s.stage_name())
                .collect();
            assert_eq!(names, ["$default"]);
            s.plan(0);
        },
    )
    .await;

    step("destroy leaves no API and no permission", async {
        s.em.run(&["destroy", "-f", &s.file, "--auto-approve"]).ok();
        assert!(s.apis().await.is_empty());
        assert!(!s.permitted(&api_id).await);
    })
    .await;
}

#[test]
fn bad_route_keys_are_refused_at_their_place() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let bad = dir.write(
        "bad.yaml",
        &STACK.replace("route: POST /messages", "route: POST/messages"),
    );
    let run = em.run(&["plan", "-f", &bad]).code(1);
    assert!(
        run.stderr.contains("bad.yaml:19:9") && run.stderr.contains("METHOD /path"),
        "{}",
        run.all()
    );
    let auth = dir.write(
        "auth.yaml",
        &STACK.replace(
            "        function: producer\n",
            "        function: producer\n        authorization: IAM\n",
        ),
    );
    let run = em.run(&["plan", "-f", &auth]).code(1);
    assert!(
        run.stderr.contains("auth.yaml:21:24") && run.stderr.contains("AWS_IAM"),
        "{}",
        run.all()
    );
    let name = dir.write(
        "name.yaml",
        &STACK.replace("function: producer", "function: httpapi-producer"),
    );
    let run = em.run(&["plan", "-f", &name]).code(1);
    assert!(
        run.stderr.contains("name.yaml:20:19")
            && run.stderr.contains("unknown resource `httpapi-producer`"),
        "{}",
        run.all()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_dropped_from_the_file_is_deleted_with_its_permission() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", STACK);
    let conf = em.sdk().await;
    let s = Scenario {
        apigw: aws_sdk_apigatewayv2::Client::new(&conf),
        lambda: aws_sdk_lambda::Client::new(&conf),
        em,
        _dir: dir,
        file,
    };
    s.apply();
    let api_id = s.live().await.api_id;
    // The file stops naming the API only once the (lagging) tagging index lists it.
    let tagging = aws_sdk_resourcegroupstagging::Client::new(&conf);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = tagging.get_resources().send().await.unwrap();
        let listed = out
            .resource_tag_mapping_list()
            .iter()
            .any(|m| m.resource_arn().is_some_and(|a| a.ends_with(&api_id)));
        if listed {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "API never indexed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let text = std::fs::read_to_string(&s.file).unwrap();
    let cut = text.find("  api:\n").unwrap();
    std::fs::write(&s.file, &text[..cut]).unwrap();
    let plan = s.plan(2);
    assert!(
        plan.stdout.contains("1 to destroy") && plan.stdout.contains("api"),
        "{}",
        plan.all()
    );
    s.apply();
    assert!(s.apis().await.is_empty());
    assert!(!s.permitted(&api_id).await);
    s.plan(0);
}
