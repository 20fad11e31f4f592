#!/usr/bin/env bash
# The CI pipeline of docs/ci.md, step for step, against whatever AWS endpoint the environment
# points at (the local emulator in tests/ci_recipe.rs, which runs this script). If a step of
# the recipe stops working, this script fails, so the documentation cannot rot.
#
#   tests/ci_recipe.sh STACK_FILE WORK_DIR
#
# Environment: MSKCTL (the binary; default `mskctl`), AWS_ENDPOINT_URL / AWS_REGION and
# credentials as the pipeline has them. With CI_RECIPE_WEB_IDENTITY_ROLE set, credentials come
# from a web identity token instead (GitLab's id_tokens path: AssumeRoleWithWebIdentity by
# the SDK from AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE).
set -euo pipefail

stack_file=$1
work=$2
mskctl=${MSKCTL:-mskctl}
mkdir -p "$work"
cd "$work"

step() { printf '\n=== %s\n' "$*"; }
fail() { printf 'ci_recipe: %s\n' "$*" >&2; exit 1; }

if [ -n "${CI_RECIPE_WEB_IDENTITY_ROLE:-}" ]; then
  step "credentials: OIDC token -> AssumeRoleWithWebIdentity (no access keys in the job)"
  printf '%s' "${CI_RECIPE_WEB_IDENTITY_TOKEN:-eyJhbGciOiJSUzI1NiJ9.e30.c2ln}" > id_token.jwt
  export AWS_WEB_IDENTITY_TOKEN_FILE=$PWD/id_token.jwt
  export AWS_ROLE_ARN=$CI_RECIPE_WEB_IDENTITY_ROLE
  export AWS_ROLE_SESSION_NAME=ci-recipe
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
fi

# --- pull request: plan, save it, post its text ----------------------------------------------
step "pull request: mskctl plan --detailed-exitcode --out plan.json"
set +e
"$mskctl" plan -f "$stack_file" --detailed-exitcode --out plan.json > plan.txt
code=$?
set -e
cat plan.txt
case $code in
  2) echo "plan has changes (exit 2): post it for review" ;;
  0) fail "expected changes on a fresh stack, got exit 0" ;;
  *) fail "plan failed (exit $code)" ;;
esac
[ -s plan.json ] || fail "plan.json was not written"
grep -q "to add" plan.txt || fail "plan.txt has no summary line"
# The review comment: the plan's text in a code block (what the pipeline posts).
{ echo '### mskctl plan'; echo '```'; cat plan.txt; echo '```'; } > comment.md

# --- merge: apply exactly the reviewed plan ---------------------------------------------------
step "merge: mskctl apply plan.json --lock-timeout 5m"
"$mskctl" apply plan.json --lock-timeout 5m
step "merge: a second apply of the same plan is refused (stale), changing nothing"
if "$mskctl" apply plan.json > stale.txt 2>&1; then
  cat stale.txt
  fail "a plan applied twice must be refused"
fi
grep -q "stale" stale.txt || { cat stale.txt; fail "the refusal does not say the plan is stale"; }

step "after merge: the stack matches the file (plan --detailed-exitcode exits 0)"
"$mskctl" plan -f "$stack_file" --detailed-exitcode > after.txt || { cat after.txt; fail "plan after apply is not empty"; }

# --- preview stacks: one copy per pull request, destroyed when it closes --------------------
step "preview: apply a copy of the stack named after the pull request"
sed -E 's/^stack: *([A-Za-z0-9-]+)/stack: \1-pr42/' "$stack_file" > "$(dirname "$stack_file")/preview.yaml"
preview=$(dirname "$stack_file")/preview.yaml
grep -q -- '-pr42' "$preview" || fail "the preview copy has no new stack name"
"$mskctl" apply -f "$preview" --auto-approve --lock-timeout 5m
step "pull request closed: destroy the preview stack"
"$mskctl" destroy -f "$preview" --auto-approve --lock-timeout 5m > destroy.txt
cat destroy.txt
grep -q "is left" destroy.txt || fail "destroy did not report its final check"

step "the main stack is untouched by the preview's destroy"
"$mskctl" plan -f "$stack_file" --detailed-exitcode > main.txt || { cat main.txt; fail "the main stack changed"; }

step "ci recipe: ok"
