"""The Resource Groups Tagging API answers from a lagging index, as on AWS.

AWS documents the tagging API as eventually consistent: GetResources reads an
index that other services update asynchronously, so a resource created a
moment ago is not listed yet, and a deleted one is still listed, with its
tags, for a while. Moto answers from the live backends.

Every change in a region records what the index would hold now (the tagged
resources of that account and region, when they changed): after each action
that is not a read, after reads at most every READ_SAMPLE seconds (a read may
settle a lazy transition, such as a cluster's deletion), and before the first
page of each GetResources (later pages continue its answer). GetResources then
answers from the record as it was `tagging_lag` seconds earlier
(`EMULATOR_TAGGING_LAG_SECONDS`, default 2). Tag changes show late too.
GetTagKeys and GetTagValues stay live (mskctl does not use them).

Moto's index also misses Elastic IPs, VPC endpoints, Lambda event source
mappings, pipes and SSM parameters,
which AWS's GetResources lists ("supports all resource types", IAM users and
roles aside): they are added.
"""

import threading
import time
from typing import Any

from moto.core.resource_tagging import TaggedResource, iter_taggable_backends
from moto.core.responses import BaseResponse
from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

from . import lifecycle

READ_SAMPLE = 0.5
READS = ("Describe", "List", "Get")

_lock = threading.Lock()
# (account, region) -> monotonic time of the last record.
_recorded_at: dict[tuple[str, str], float] = {}
# (account, region) -> [(monotonic time, frozen list of TaggedResource)], oldest first.
_history: dict[tuple[str, str], list[tuple[float, tuple[TaggedResource, ...]]]] = {}


def _unindexed(account: str, region: str) -> list[TaggedResource]:
    """Tagged resources AWS's index lists (GetResources "supports all resource types" except
    IAM users and roles) but moto's backends do not yield: Elastic IPs, VPC endpoints, Lambda
    event source mappings and EventBridge pipes."""
    from moto.awslambda.models import lambda_backends
    from moto.ec2.models import ec2_backends
    from moto.pipes.models import pipes_backends

    found: list[TaggedResource] = []
    if account in ec2_backends and region in ec2_backends[account]:
        ec2 = ec2_backends[account][region]
        for address in list(ec2.addresses):
            tags = dict(ec2.tags.get(address.allocation_id or "", {}))
            if address.allocation_id and tags:
                arn = f"arn:aws:ec2:{region}:{account}:elastic-ip/{address.allocation_id}"
                found.append(TaggedResource(arn, tags, "ec2:elastic-ip"))
        for endpoint in list(ec2.vpc_end_points.values()):
            tags = dict(ec2.tags.get(endpoint.id, {}))
            if tags and getattr(endpoint, "state", "") != "deleted":
                arn = f"arn:aws:ec2:{region}:{account}:vpc-endpoint/{endpoint.id}"
                found.append(TaggedResource(arn, tags, "ec2:vpc-endpoint"))
    if account in lambda_backends and region in lambda_backends[account]:
        for esm in list(lambda_backends[account][region]._event_source_mappings.values()):
            tags = dict(getattr(esm, "tags", None) or {})
            if tags and getattr(esm, "arn", None):
                found.append(TaggedResource(esm.arn, tags, "lambda:event-source-mapping"))
    if account in pipes_backends and region in pipes_backends[account]:
        for pipe in list(pipes_backends[account][region].pipes.values()):
            if pipe.tags:
                found.append(TaggedResource(pipe.arn, dict(pipe.tags), "pipes:pipe"))
    found.extend(_unindexed_http_apis(account, region))
    found.extend(_unindexed_parameters(account, region))
    return found


def _unindexed_parameters(account: str, region: str) -> list[TaggedResource]:
    """Tagged SSM parameters (`arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`, NAME without its
    leading `/`), which AWS's index lists (mskctl's Kafka topic records) and moto's ssm
    backend does not yield."""
    from moto.ssm.models import ssm_backends

    found: list[TaggedResource] = []
    if account in ssm_backends and region in ssm_backends[account]:
        backend = ssm_backends[account][region]
        for name, tags in list(backend._resource_tags.get("Parameter", {}).items()):
            if tags and name in backend._parameters:
                arn = f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"
                found.append(TaggedResource(arn, dict(tags), "ssm:parameter"))
    return found


def _unindexed_http_apis(account: str, region: str) -> list[TaggedResource]:
    """API Gateway HTTP APIs (`arn:aws:apigateway:REGION::/apis/ID`), which AWS's index lists
    and moto's apigatewayv2 backend does not yield."""
    from moto.apigatewayv2.models import apigatewayv2_backends

    found: list[TaggedResource] = []
    if account in apigatewayv2_backends and region in apigatewayv2_backends[account]:
        backend = apigatewayv2_backends[account][region]
        for api in list(backend.apis.values()):
            tags = dict(backend.get_tags(api.arn))
            if tags:
                found.append(TaggedResource(api.arn, tags, "apigateway:apis"))
    return found


def _live(account: str, region: str) -> tuple[TaggedResource, ...]:
    for _ in range(5):  # other threads may change a backend while we walk it
        try:
            return tuple(
                TaggedResource(r.arn, dict(r.tags), r.resource_type, dict(r.extra))
                for backend in iter_taggable_backends(account, region)
                for r in backend.iter_tagged_resources()
            ) + tuple(_unindexed(account, region))
        except RuntimeError:
            continue
    return ()


def record(account: str, region: str, sample: bool = False) -> None:
    """Remember what the index holds now, if it changed; forget what is too old to matter.
    With `sample`, skip it when the last record is recent (reads are frequent and rarely
    change anything)."""
    if not region or lifecycle.delay("tagging_lag") <= 0:
        return
    now = time.monotonic()
    # Most reads stop here, without the lock: under many concurrent requests a lock that is
    # held while Python code runs makes every request queue behind it.
    if sample and now - _recorded_at.get((account, region), 0.0) < READ_SAMPLE:
        return
    with _lock:
        if sample and now - _recorded_at.get((account, region), 0.0) < READ_SAMPLE:
            return
        _recorded_at[(account, region)] = now
        last = _history.get((account, region), [(0.0, None)])[-1][1]
    current = _live(account, region)
    changed = current != last  # outside the lock too: compares every resource
    with _lock:
        history = _history.setdefault((account, region), [])
        if history and history[-1][1] is not last:
            # Another record landed meanwhile: compare with it, and keep the times in order.
            changed = history[-1][1] != current
            now = max(now, history[-1][0])
        if changed or not history:
            history.append((now, current))
        # Keep the newest entry older than the largest lag that may be asked for.
        horizon = now - max(lifecycle.delay("tagging_lag"), 0) - 60
        while len(history) > 1 and history[1][0] <= horizon:
            history.pop(0)


def lagged(account: str, region: str) -> tuple[TaggedResource, ...]:
    """The index as it was `tagging_lag` seconds ago (empty before anything was recorded)."""
    cutoff = time.monotonic() - lifecycle.delay("tagging_lag")
    with _lock:
        seen: tuple[TaggedResource, ...] = ()
        for when, resources in _history.get((account, region), []):
            if when > cutoff:
                break
            seen = resources
        return seen


def reset() -> None:
    with _lock:
        _history.clear()
        _recorded_at.clear()


def patch_tagging_index_lags() -> None:
    original_call = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        # Record before GetResources (it must see the latest change) and after every other
        # action (its own effect, or a lazy transition a read settled).
        region = getattr(self, "region", "")
        action = self._get_action() or ""
        if action == "GetResources":
            # Only a first page reads the index: later pages go on with the answer it started
            # (moto keeps the page's generator), so recording before them is wasted work.
            if not self._get_param("PaginationToken"):
                record(self.current_account, region)
            return original_call(self)
        try:
            return original_call(self)
        finally:
            record(self.current_account, region, sample=action.startswith(READS))

    BaseResponse.call_action = call_action

    from moto.core.resource_tagging import make_tag_matcher, match_resource_type

    original_generator = ResourceGroupsTaggingAPIBackend._get_resources_generator

    def _get_resources_generator(
        self: ResourceGroupsTaggingAPIBackend,
        tag_filters: list[dict[str, Any]] | None = None,
        resource_type_filters: list[str] | None = None,
        resource_arn_list: list[str] | None = None,
    ) -> Any:
        if lifecycle.delay("tagging_lag") <= 0:
            yield from original_generator(self, tag_filters, resource_type_filters, resource_arn_list)
            resources: Any = _unindexed(self.account_id, self.region_name)
        else:
            resources = lagged(self.account_id, self.region_name)
        tag_matcher = make_tag_matcher(tag_filters)
        for resource in resources:
            if not resource.tags and not resource.extra.get("include_untagged"):
                continue
            if not match_resource_type(resource.resource_type, resource_type_filters):
                continue
            if not tag_matcher(resource.tags):
                continue
            if resource_arn_list and resource.arn not in resource_arn_list:
                continue
            yield resource

    ResourceGroupsTaggingAPIBackend._get_resources_generator = _get_resources_generator
