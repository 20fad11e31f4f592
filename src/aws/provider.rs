//! The engine's [`Provider`] on AWS: dispatches each operation to the kind's AWS half, and
//! reads the stack's live resources of every kind the run needs.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::task::JoinSet;

use crate::aws::kinds::KindApi;
use crate::aws::{CallError, Ctx};
use crate::engine::Provider;
use crate::model::{Desired, Observed};
use crate::plan::Live;

/// The AWS halves of the kinds, looked up by kind name.
pub struct AwsProvider {
    cx: Arc<Ctx>,
    kinds: Vec<&'static dyn KindApi>,
}

impl AwsProvider {
    pub fn new(cx: Arc<Ctx>, kinds: Vec<&'static dyn KindApi>) -> AwsProvider {
        AwsProvider { cx, kinds }
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
    pub async fn read_live(&self) -> Result<Vec<Live>, String> {
        self.cx.forget_tagged();
        let mut tasks = JoinSet::new();
        for &kind in &self.kinds {
            let cx = self.cx.clone();
            tasks.spawn(async move { (kind.model().schema().kind, kind.read(&cx).await) });
        }
        let mut live = Vec::new();
        let mut errors = Vec::new();
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
        Ok(live)
    }
}

fn message(e: CallError) -> String {
    e.to_string()
}

#[async_trait]
impl Provider for AwsProvider {
    async fn create(&self, kind: &str, desired: &Desired) -> Result<Observed, String> {
        self.kind(kind)?
            .create(&self.cx, desired)
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
        self.kind(kind)?
            .update(&self.cx, desired, observed, changed)
            .await
            .map_err(message)
    }

    async fn settle(&self, kind: &str, observed: &Observed) -> Result<Observed, String> {
        let api = self.kind(kind)?;
        if let Some(state) = api.model().settling(observed) {
            self.cx
                .progress(&observed.id, &format!("{state}: waiting until it is ready"));
        }
        api.settle(&self.cx, observed).await.map_err(message)
    }

    async fn delete(&self, kind: &str, observed: &Observed) -> Result<(), String> {
        self.kind(kind)?
            .delete(&self.cx, observed)
            .await
            .map_err(message)
    }
}
