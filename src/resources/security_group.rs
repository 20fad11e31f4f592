//! `security_group`: placeholder until the kind is implemented.

use async_trait::async_trait;

use crate::aws::CallError;
use crate::resources::{Ctx, Desired, Kind, Observed};
use crate::schema::Schema;

pub struct SecurityGroup;

static SCHEMA: Schema = Schema {
    kind: "security_group",
    doc: "",
    props: &[],
    attrs: &["id"],
    taggable: true,
};

#[async_trait]
impl Kind for SecurityGroup {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    async fn read(&self, _cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        Ok(Vec::new())
    }

    async fn create(&self, _cx: &Ctx, _d: &Desired) -> Result<Observed, CallError> {
        Err(CallError::state("create", "not implemented"))
    }

    async fn update(&self, _cx: &Ctx, _d: &Desired, _o: &Observed, _c: &[String]) -> Result<Observed, CallError> {
        Err(CallError::state("update", "not implemented"))
    }

    async fn delete(&self, _cx: &Ctx, _o: &Observed) -> Result<(), CallError> {
        Err(CallError::state("delete", "not implemented"))
    }
}
