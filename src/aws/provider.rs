//! The engine's [`Provider`] on AWS: dispatches each operation to the kind's AWS half, and
//! reads the stack's live resources of every kind the run needs.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::task::JoinSet;

use crate::aws::kinds::{KindApi, arn_has_type, tagged_index};
use crate::aws::retry::{self, Made};
use crate::aws::{CALL_SCOPE, CallError, Ctx};
use crate::engine::Provider;
use crate::model::kinds::security_group as sg;
use crate::model::{Desired, Observed, Val, Wanted};
use crate::plan::Live;

/// The AWS halves of the kinds, looked up by kind name.
pub struct AwsProvider {
    cx: Arc<Ctx>,
    kinds: Vec<&'static dyn KindApi>,
    /// Physical ids of every live resource this run has read. A create whose outcome is
    /// unknown can only have made something not among them: during a create-before-destroy
    /// replacement the old copy carries the same logical id and must never be adopted as
    /// the new one (and then deleted as the old).
    seen: Mutex<BTreeSet<String>>,
}

impl AwsProvider {
    pub fn new(cx: Arc<Ctx>, kinds: Vec<&'static dyn KindApi>) -> AwsProvider {
        AwsProvider {
            cx,
            kinds,
            seen: Mutex::default(),
        }
    }

    fn kind(&self, name: &str) -> Result<&'static dyn KindApi, String> {
        self.kinds
            .iter()
            .copied()
            .find(|k| k.model().schema().kind == name)
            .ok_or_else(|| format!("internal: no AWS implementation of kind `{name}`"))
    }

    /// Every kind's live resources owned by the stack, all kinds concurrently, sorted by
    /// logical id then physical id. Each call reads afresh (destroy's final check must not see
    /// the tagging answer of the first read).
    ///
    /// Kinds the stack file declares, and kinds the tagging index cannot witness, are always
    /// read with their own service's calls. A kind the file does not declare is read only when
    /// the tagging index lists a resource of it (a kind removed from the file still has its
    /// resources deleted); otherwise its service-wide calls (ListPipes, ListEventSourceMappings…)
    /// are skipped. The index decides only whether to look, never what exists.
    pub async fn read_live(&self) -> Result<Vec<Live>, String> {
        self.cx.forget_tagged();
        let mut tasks = JoinSet::new();
        let spawn = |tasks: &mut JoinSet<_>, kind: &'static dyn KindApi| {
            let cx = self.cx.clone();
            tasks.spawn(async move { (kind.model().schema().kind, kind.read(&cx).await) });
        };
        let mut undeclared = Vec::new();
        for &kind in &self.kinds {
            let name = kind.model().schema().kind;
            match (self.cx.stack_kinds(), indexed_type(name)) {
                (Some(declared), Some(index_type)) if !declared.contains(name) => {
                    undeclared.push((kind, index_type))
                }
                _ => spawn(&mut tasks, kind),
            }
        }
        let mut errors = Vec::new();
        if !undeclared.is_empty() {
            match tagged_index(&self.cx).await {
                Ok(index) => {
                    for (kind, index_type) in undeclared {
                        if index.iter().any(|(arn, _)| arn_has_type(arn, index_type)) {
                            spawn(&mut tasks, kind);
                        }
                    }
                }
                Err(e) => errors.push(format!("reading the stack's tagged resources: {e}")),
            }
        }
        let mut live = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (kind, result) = joined.map_err(|e| format!("internal: {e}"))?;
            match result {
                Ok(found) => live.extend(found.into_iter().map(|observed| Live { kind, observed })),
                Err(e) => errors.push(format!("reading {kind} resources: {e}")),
            }
        }
        if !errors.is_empty() {
            errors.sort();
            return Err(errors.join("\n"));
        }
        live.sort_by(|a, b| {
            a.observed
                .id
                .cmp(&b.observed.id)
                .then(a.observed.physical_id.cmp(&b.observed.physical_id))
        });
        keep_used_copies_first(&mut live);
        self.seen
            .lock()
            .unwrap()
            .extend(live.iter().map(|l| l.observed.physical_id.clone()));
        Ok(live)
    }
}

impl AwsProvider {
    /// Create `desired`, resolving a create whose reply was lost, or that AWS says already
    /// exists, by looking up this stack's copy with the kind's own read (ownership tags,
    /// names) before anything is sent again. A copy found is adopted: whatever the create
    /// would have set after the call that made it (attributes, policies, rules, routes, tags)
    /// is applied as an in-place update, then the resource is waited for like a new one.
    async fn create_resolving(
        &self,
        api: &'static dyn KindApi,
        desired: &Desired,
    ) -> Result<Observed, CallError> {
        let cx = &*self.cx;
        let made = retry::create_resolving(
            cx,
            &desired.id,
            || api.create(cx, desired),
            || async {
                let before = self.seen.lock().unwrap().clone();
                self.find(api, &desired.id, None, &before).await
            },
        )
        .await?;
        match made {
            Made::Created(observed) => Ok(observed),
            Made::Found(found) => {
                self.converge(
                    api,
                    desired,
                    found,
                    "setting what the create had not set yet",
                )
                .await
            }
        }
    }

    /// Update in place; a call of the update whose reply was lost is resolved like a create's
    /// ([`AwsProvider::converge`]).
    async fn update_resolving(
        &self,
        api: &'static dyn KindApi,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let cx = &*self.cx;
        match api.update(cx, desired, observed, changed).await {
            Err(e) if retry::outcome_unknown_or_exists(&e) => {
                self.say_resolving(&desired.id, &e);
                let found = self
                    .find(
                        api,
                        &desired.id,
                        Some(&observed.physical_id),
                        &BTreeSet::new(),
                    )
                    .await?
                    .ok_or(e)?;
                self.converge(api, desired, found, "still to change").await
            }
            other => other,
        }
    }

    /// Bring `found`, this stack's live copy, to `desired` with in-place updates, then wait
    /// for it like a new resource. A call of the update whose reply is lost (or that says
    /// what it adds already exists) is resolved by reading the resource again and updating
    /// what still differs; the same call may fail so at most [`retry::LOST_REPLY_ATTEMPTS`]
    /// times.
    async fn converge(
        &self,
        api: &'static dyn KindApi,
        desired: &Desired,
        mut found: Observed,
        why: &str,
    ) -> Result<Observed, CallError> {
        let cx = &*self.cx;
        // Lost replies per operation: each resolved one makes progress (a call that took
        // effect), so only the same call failing again and again ends the loop.
        let mut losses: BTreeMap<String, u32> = BTreeMap::new();
        loop {
            let changed = in_place_changes(api, desired, &found)?;
            if changed.is_empty() {
                break;
            }
            cx.progress(&desired.id, &format!("{why}: {}", changed.join(", ")));
            match api.update(cx, desired, &found, &changed).await {
                Ok(observed) => {
                    found = observed;
                    break;
                }
                Err(e) if retry::outcome_unknown_or_exists(&e) => {
                    let n = losses.entry(e.op.clone()).or_default();
                    *n += 1;
                    if *n >= retry::LOST_REPLY_ATTEMPTS {
                        return Err(e);
                    }
                    self.say_resolving(&desired.id, &e);
                    let same = found.physical_id.clone();
                    found = self
                        .find(api, &desired.id, Some(&same), &BTreeSet::new())
                        .await?
                        .ok_or(e)?;
                }
                Err(e) => return Err(e),
            }
        }
        if api.model().settling(&found).is_some() {
            return api.settle(cx, &found).await;
        }
        Ok(found)
    }

    fn say_resolving(&self, id: &str, e: &CallError) {
        let what = if e.reply_lost() {
            "outcome unknown (no reply)".to_string()
        } else {
            format!("answered {}", e.code.as_deref().unwrap_or("already exists"))
        };
        self.cx.progress(
            id,
            &format!(
                "{}: {what}; reading the resource again to see what is left to do",
                e.op
            ),
        );
    }

    /// This stack's live resource of `api`'s kind with logical id `id`, read afresh, as the
    /// planner sees it (a security group without the rules naming other groups, which are
    /// its `<id>.rules` node). With several copies, the one with physical id `prefer` (the
    /// copy being updated), else the lowest physical id.
    async fn find(
        &self,
        api: &'static dyn KindApi,
        id: &str,
        prefer: Option<&str>,
        not: &BTreeSet<String>,
    ) -> Result<Option<Observed>, CallError> {
        self.cx.forget_tagged();
        let kind = api.model().schema().kind;
        let (reader, rules) = if kind == sg::RULES_SCHEMA.kind {
            (
                self.kind(sg::SCHEMA.kind)
                    .map_err(|e| CallError::state("reading", e))?,
                true,
            )
        } else {
            (api, false)
        };
        let mut copies: Vec<Observed> = reader
            .read(&self.cx)
            .await?
            .into_iter()
            .filter_map(|o| {
                if reader.model().schema().kind != sg::SCHEMA.kind {
                    return Some(o);
                }
                let (group, node) = sg::split_observed(&o);
                if rules { node } else { Some(group) }
            })
            .filter(|o| o.id == id && !not.contains(&o.physical_id))
            .collect();
        copies.sort_by(|a, b| {
            let preferred = |o: &Observed| Some(o.physical_id.as_str()) != prefer;
            preferred(a)
                .cmp(&preferred(b))
                .then(a.physical_id.cmp(&b.physical_id))
        });
        Ok(copies.into_iter().next())
    }
}

/// The top-level properties in which `found` differs from `desired` and that change in place;
/// an error naming the property when one cannot (the copy found is not what the create would
/// have made).
fn in_place_changes(
    api: &'static dyn KindApi,
    desired: &Desired,
    found: &Observed,
) -> Result<Vec<String>, CallError> {
    let wanted: Wanted = desired
        .props
        .iter()
        .map(|(k, v)| (k.clone(), Val::Known(v.clone())))
        .collect();
    let changes = crate::plan::diff(api.model(), &wanted, &found.props);
    if let Some(forced) = changes.iter().find(|c| c.forces_replacement) {
        return Err(CallError::state(
            "adopting",
            format!(
                "this stack's {} `{}` ({}) exists but its `{}` differs from the file and cannot \
                 change in place; run plan to see the replacement",
                api.model().schema().kind,
                desired.id,
                found.physical_id,
                forced.path
            ),
        ));
    }
    let mut changed: Vec<String> = changes
        .iter()
        .map(|c| top_level(&c.path).to_string())
        .collect();
    changed.sort();
    changed.dedup();
    Ok(changed)
}

/// Among several live copies of one logical id (duplicates: a create whose reply was lost and
/// that an older mskctl sent again, or a copy made by hand with the same tags), put first the
/// copy the stack's other live resources use: the planner manages the first copy and deletes
/// the others, so the VPC that holds the subnets stays and the idle one goes, and nothing that
/// works is replaced to point at an empty copy. A copy is used when another resource's
/// properties name its id, ARN or another of its attributes. Among equally used copies the
/// oldest goes first, where AWS reports when the resource was made and the kind's read keeps
/// it (the [`CREATED`] attribute: MSK cluster `CreationTime`, NAT gateway `CreateTime`, VPC
/// endpoint `CreationTimestamp`, pipe `CreationTime`); otherwise the order stays by physical
/// id, the lowest first. EC2 reports no creation time for VPCs, subnets, security groups,
/// internet gateways, route tables or Elastic IPs, Lambda's `LastModified` (functions, event
/// source mappings) is not one, and roles and queues are unique by name, so one stack cannot
/// hold two copies of one.
fn keep_used_copies_first(live: &mut [Live]) {
    let mut i = 0;
    while i < live.len() {
        let same = live[i..]
            .iter()
            .take_while(|l| l.kind == live[i].kind && l.observed.id == live[i].observed.id)
            .count()
            .max(1);
        if same > 1 {
            let id = live[i].observed.id.clone();
            let mut named: std::collections::BTreeSet<String> = Default::default();
            for other in live.iter().filter(|l| l.observed.id != id) {
                for (k, v) in &other.observed.props {
                    if k != "tags" {
                        collect_strings(v, &mut named);
                    }
                }
            }
            let uses = |l: &Live| {
                l.observed
                    .attrs
                    .values()
                    .chain(std::iter::once(&l.observed.physical_id))
                    .filter(|v| named.contains(*v))
                    .count()
            };
            // Stable: equally used copies without a creation time keep their order.
            live[i..i + same].sort_by_key(|l| (std::cmp::Reverse(uses(l)), created_at(l)));
        }
        i += same;
    }
}

/// The observed attribute holding when AWS made the resource, for kinds whose API reports it:
/// `SECONDS.NANOS` since the Unix epoch ([`created_attr`]). Not in any schema, so it cannot be
/// referenced; it only orders duplicates ([`keep_used_copies_first`]).
pub const CREATED: &str = "created";

/// The [`CREATED`] attribute for AWS's creation time `at`.
pub fn created_attr(at: &aws_smithy_types::DateTime) -> (String, String) {
    (
        CREATED.to_string(),
        format!("{}.{:09}", at.secs(), at.subsec_nanos()),
    )
}

/// When a copy was made, `None` (sorted after any time) when AWS gives no creation time.
fn created_at(l: &Live) -> (bool, i64, u32) {
    let parsed = l.observed.attrs.get(CREATED).and_then(|v| {
        let (secs, nanos) = v.split_once('.')?;
        Some((secs.parse::<i64>().ok()?, nanos.parse::<u32>().ok()?))
    });
    match parsed {
        Some((secs, nanos)) => (false, secs, nanos),
        None => (true, 0, 0),
    }
}

fn collect_strings(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::String(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

/// The top-level property of an attribute path (`routes[0].gateway` → `routes`).
fn top_level(path: &str) -> &str {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    &path[..end]
}

/// The Resource Groups Tagging API type (`service:resource-type`) of a kind's resources.
/// `None` for kinds GetResources does not list (IAM roles: "The GetResources operation does
/// not currently support IAM users and roles") and kinds not listed here: those are always
/// read.
fn indexed_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "vpc" => "ec2:vpc",
        "subnet" => "ec2:subnet",
        "internet_gateway" => "ec2:internet-gateway",
        "eip" => "ec2:elastic-ip",
        "nat_gateway" => "ec2:natgateway",
        "route_table" => "ec2:route-table",
        "security_group" => "ec2:security-group",
        "vpc_endpoint" => "ec2:vpc-endpoint",
        "msk_serverless_cluster" => "kafka:cluster",
        "sqs_queue" => "sqs",
        "lambda_function" => "lambda:function",
        "pipe" => "pipes:pipe",
        "event_source_mapping" => "lambda:event-source-mapping",
        "http_api" => "apigateway",
        // A topic's record (the SSM parameter `/mskctl/<stack>/topics/<id>`).
        "kafka_topic" => "ssm:parameter",
        _ => return None,
    })
}

fn message(e: CallError) -> String {
    e.to_string()
}

/// Run `op` with its AWS calls attributed to `action kind id` in the call log.
async fn scoped<T>(action: &str, kind: &str, id: &str, op: impl Future<Output = T>) -> T {
    let scope: Arc<str> = format!("{action} {kind} {id}").into();
    CALL_SCOPE.scope(scope, op).await
}

#[async_trait]
impl Provider for AwsProvider {
    async fn create(&self, kind: &str, desired: &Desired) -> Result<Observed, String> {
        let api = self.kind(kind)?;
        scoped(
            "create",
            kind,
            &desired.id,
            self.create_resolving(api, desired),
        )
        .await
        .map_err(message)
    }

    async fn update(
        &self,
        kind: &str,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, String> {
        let api = self.kind(kind)?;
        let op = self.update_resolving(api, desired, observed, changed);
        scoped("update", kind, &desired.id, op)
            .await
            .map_err(message)
    }

    async fn settle(&self, kind: &str, observed: &Observed) -> Result<Observed, String> {
        let api = self.kind(kind)?;
        if let Some(state) = api.model().settling(observed) {
            self.cx
                .progress(&observed.id, &format!("{state}: waiting until it is ready"));
        }
        scoped("settle", kind, &observed.id, api.settle(&self.cx, observed))
            .await
            .map_err(message)
    }

    async fn delete(&self, kind: &str, observed: &Observed) -> Result<(), String> {
        let api = self.kind(kind)?;
        scoped("delete", kind, &observed.id, api.delete(&self.cx, observed))
            .await
            .map_err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(kind: &'static str, id: &str, physical: &str, props: serde_json::Value) -> Live {
        Live {
            kind,
            observed: Observed {
                id: id.into(),
                physical_id: physical.into(),
                props: props.as_object().unwrap().clone().into_iter().collect(),
                attrs: [("id".to_string(), physical.to_string())].into(),
            },
        }
    }

    /// Two VPCs with the same logical id: the one the subnet names goes first (the planner
    /// keeps the first copy and deletes the others), whatever the ids' order.
    #[test]
    fn the_copy_in_use_is_kept_first() {
        let mut all = vec![
            live(
                "subnet",
                "subnet",
                "subnet-1",
                serde_json::json!({"vpc": "vpc-b", "tags": {"x": "vpc-a"}}),
            ),
            live("vpc", "vpc", "vpc-a", serde_json::json!({})),
            live("vpc", "vpc", "vpc-b", serde_json::json!({})),
            live("vpc", "vpc", "vpc-c", serde_json::json!({})),
        ];
        all.sort_by(|a, b| {
            a.observed
                .id
                .cmp(&b.observed.id)
                .then(a.observed.physical_id.cmp(&b.observed.physical_id))
        });
        keep_used_copies_first(&mut all);
        let order: Vec<&str> = all
            .iter()
            .map(|l| l.observed.physical_id.as_str())
            .collect();
        // Tags do not count as use; unused copies keep their order.
        assert_eq!(order, ["subnet-1", "vpc-b", "vpc-a", "vpc-c"]);
        // Nobody uses either copy: the order by id stays.
        let mut idle = vec![
            live("vpc", "vpc", "vpc-a", serde_json::json!({})),
            live("vpc", "vpc", "vpc-b", serde_json::json!({})),
        ];
        keep_used_copies_first(&mut idle);
        assert_eq!(idle[0].observed.physical_id, "vpc-a");
    }

    /// Among equally used copies, the oldest (AWS's creation time) is kept, whatever the ids'
    /// order; a copy in use still beats an older idle one.
    #[test]
    fn among_equally_used_copies_the_oldest_is_kept() {
        let made = |physical: &str, secs: i64, nanos: u32| {
            let mut l = live("nat_gateway", "nat", physical, serde_json::json!({}));
            let (k, v) = created_attr(&aws_smithy_types::DateTime::from_secs_and_nanos(
                secs, nanos,
            ));
            l.observed.attrs.insert(k, v);
            l
        };
        let mut all = vec![
            made("nat-a", 1_700_000_100, 0),
            made("nat-b", 1_700_000_000, 500),
            made("nat-c", 1_700_000_000, 20),
        ];
        keep_used_copies_first(&mut all);
        let order: Vec<&str> = all
            .iter()
            .map(|l| l.observed.physical_id.as_str())
            .collect();
        assert_eq!(order, ["nat-c", "nat-b", "nat-a"]);
        // The newest copy is the one a route table uses: it stays first.
        let mut all = vec![
            live(
                "route_table",
                "rt",
                "rtb-1",
                serde_json::json!({"routes": [{"nat_gateway": "nat-a"}]}),
            ),
            made("nat-a", 1_700_000_100, 0),
            made("nat-b", 1_700_000_000, 0),
        ];
        all.sort_by(|a, b| a.observed.id.cmp(&b.observed.id));
        keep_used_copies_first(&mut all);
        let nats: Vec<&str> = all
            .iter()
            .filter(|l| l.kind == "nat_gateway")
            .map(|l| l.observed.physical_id.as_str())
            .collect();
        assert_eq!(nats, ["nat-a", "nat-b"]);
        // An unparsable time counts as none.
        let mut odd = made("nat-x", 1, 0);
        odd.observed
            .attrs
            .insert(CREATED.into(), "yesterday".into());
        assert_eq!(created_at(&odd), (true, 0, 0));
    }

    #[test]
    fn attribute_paths_name_their_top_level_property() {
        assert_eq!(top_level("routes[0].gateway"), "routes");
        assert_eq!(top_level("vpc_config.subnets"), "vpc_config");
        assert_eq!(top_level("tags"), "tags");
    }

    /// Each kind's index type matches the ARNs AWS gives its resources (a wrong type would
    /// make a plan skip a kind the stack still owns resources of).
    #[test]
    fn index_types_match_the_arns_of_their_kinds() {
        let arns = [
            ("vpc", "arn:aws:ec2:ap-northeast-1:123456789012:vpc/vpc-1"),
            (
                "subnet",
                "arn:aws:ec2:ap-northeast-1:123456789012:subnet/subnet-1",
            ),
            (
                "internet_gateway",
                "arn:aws:ec2:ap-northeast-1:123456789012:internet-gateway/igw-1",
            ),
            (
                "eip",
                "arn:aws:ec2:ap-northeast-1:123456789012:elastic-ip/eipalloc-1",
            ),
            (
                "nat_gateway",
                "arn:aws:ec2:ap-northeast-1:123456789012:natgateway/nat-1",
            ),
            (
                "route_table",
                "arn:aws:ec2:ap-northeast-1:123456789012:route-table/rtb-1",
            ),
            (
                "security_group",
                "arn:aws:ec2:ap-northeast-1:123456789012:security-group/sg-1",
            ),
            (
                "vpc_endpoint",
                "arn:aws:ec2:ap-northeast-1:123456789012:vpc-endpoint/vpce-1",
            ),
            (
                "msk_serverless_cluster",
                "arn:aws:kafka:ap-northeast-1:123456789012:cluster/c/uuid-s1",
            ),
            ("sqs_queue", "arn:aws:sqs:ap-northeast-1:123456789012:q"),
            (
                "lambda_function",
                "arn:aws:lambda:ap-northeast-1:123456789012:function:f",
            ),
            ("pipe", "arn:aws:pipes:ap-northeast-1:123456789012:pipe/p"),
            (
                "event_source_mapping",
                "arn:aws:lambda:ap-northeast-1:123456789012:event-source-mapping:u",
            ),
            (
                "http_api",
                "arn:aws:apigateway:ap-northeast-1::/apis/a1b2c3",
            ),
            (
                "kafka_topic",
                "arn:aws:ssm:ap-northeast-1:123456789012:parameter/mskctl/s/topics/orders",
            ),
        ];
        for (kind, arn) in arns {
            let t = indexed_type(kind).unwrap_or_else(|| panic!("{kind} has no index type"));
            assert!(arn_has_type(arn, t), "{kind}: {t} does not match {arn}");
            for (other, other_arn) in arns {
                if other != kind {
                    assert!(!arn_has_type(other_arn, t), "{kind}'s {t} matches {other}");
                }
            }
        }
        // GetResources does not list IAM roles: they are always read.
        assert_eq!(indexed_type("iam_role"), None);
    }
}
