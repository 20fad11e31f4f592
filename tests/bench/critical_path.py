"""The critical path of one apply or destroy, from mskctl's call log (MSKCTL_CALL_LOG).

    critical_path.py apply|destroy LOG [--delay KIND:ACTION=SECONDS ...]
        [--vpc-delay KIND:ACTION=SECONDS ...] [--linger KIND=SECONDS ...]

Definition (README, Benchmark): each resource operation costs the measured duration of the
calls it made (calls in flight at the same time count once: the time covered by at least one
of them), where a wait's repeated polls (the same read operation several times in a row)
count as their last poll only, and a retried refusal counts as its last attempt only (from
the first attempt AWS refused with an HTTP error, `refused` in the log, to the last attempt
of that call, the calls in between are waiting, not work), plus the provisioning time the
emulator was told to take for that kind and action (`--delay`; `--vpc-delay` for the
resources of the kind placed in the stack's subnets, i.e. with a subnet among their
dependencies: a Lambda function is `Pending` while its network interfaces attach).

A resource's path is its own cost plus the longest path among the resources it waits for (its
dependencies for apply; its dependents for destroy). On destroy, a resource whose network
interfaces outlive it (`--linger KIND=SECONDS`: released SECONDS after its delete call
returned) also holds the subnets and security groups those interfaces are in until then: a
subnet's or group's path starts no earlier than that release. The interfaces are in the
subnets and groups the resource depends on; for an event source mapping or a pipe, also in
those of the MSK cluster it depends on (AWS places Kafka pollers in the cluster's network).

The walk needs at least the longest resource path, and at least the sum of all costs divided
by the parallelism (mskctl's default 10): `chain_s` is the larger of the two. The critical
path is `chain_s` plus the calls outside any resource operation before the first one
(identity, lock, bulk read, measured as their span) and after the last one (final read,
unlock). It is what this run's own calls would take if every resource started the moment its
dependencies finished and every wait ended the moment the resource (or the subnet a
lingering interface held) was ready.

Prints `critical_path_s=… chain_s=… walk_s=… walk/chain=… calls=…` on one line: `chain_s` is the
longest resource path alone, `walk_s` the span from the first to the last resource call, so
`walk/chain` measures the walk itself without the fixed reads before and after it.
"""

import argparse
import sys
from collections import defaultdict

READS = ("Describe", "Get", "List")
# Kinds whose network interfaces sit in subnets and security groups.
NETWORK_KINDS = ("subnet", "security_group")
# Kinds whose interfaces are placed in the network of the MSK cluster they read from.
POLLER_KINDS = ("event_source_mapping", "pipe")

# One logged call: start, end (s), action, kind, resource id, SERVICE.Operation, refused.
Call = tuple[float, float, str, str, str, str, bool]


def parse(path: str):
    """The resources' dependencies, their kinds, and the calls."""
    deps: dict[str, set[str]] = {}
    kinds: dict[str, str] = {}
    calls: list[Call] = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "dep" and len(parts) >= 3:
                kinds[parts[1]] = parts[2]
                deps[parts[1]] = set(parts[3:])
            elif parts[0] == "call" and len(parts) == 7:
                start, end, action, kind, rid, op = parts[1:]
                calls.append((int(start) / 1e6, int(end) / 1e6, action, kind, rid, op, False))
            elif parts[0] == "refused" and calls:
                calls[-1] = calls[-1][:6] + (True,)
    return deps, kinds, calls


def work(ops: list[tuple[float, float, str, bool]]) -> list[tuple[float, float, str, bool]]:
    """The calls of one resource operation that count: without the waiting between a call's
    first refused attempt and its last attempt, and without all but the last of a wait's
    repeated polls."""
    ops = sorted(ops)
    waiting: list[tuple[float, float]] = []
    for name in {op for _, _, op, refused in ops if refused}:
        first = min(s for s, _, op, refused in ops if op == name and refused)
        last = max(s for s, _, op, _ in ops if op == name)
        waiting.append((first, last))
    ops = [c for c in ops if not any(a <= c[0] < b for a, b in waiting)]
    kept = []
    for i, call in enumerate(ops):
        op = call[2]
        polled_again = i + 1 < len(ops) and ops[i + 1][2] == op and op.split(".", 1)[-1].startswith(READS)
        if not polled_again:
            kept.append(call)
    return kept


def op_cost(ops: list[tuple[float, float, str, bool]], delay: float) -> float:
    # Calls in flight together (a table's routes, a group's ingress and egress) cost their
    # span once, not their sum: the time covered by at least one call.
    cost, reach = 0.0, float("-inf")
    for start, end, _, _ in work(ops):
        if end > reach:
            cost += end - max(start, reach)
            reach = end
    return cost + delay


def delete_call_span(ops: list[tuple[float, float, str, bool]]) -> float:
    """From the operation's first call to the end of its first Delete call (when the owner of
    lingering interfaces let them go), or the whole operation without one."""
    ops = sorted(ops)
    first = ops[0][0]
    ends = [e for s, e, op, _ in ops if op.split(".", 1)[-1].startswith("Delete")]
    return (ends[0] if ends else max(e for _, e, _, _ in ops)) - first


def in_vpc(rid: str, deps, kinds) -> bool:
    return any(kinds.get(d) == "subnet" for d in deps.get(rid, ()))


def interface_network(rid: str, deps, kinds) -> set[str]:
    """The subnets and security groups of the stack that resource `rid`'s interfaces are in."""
    direct = deps.get(rid, set())
    out = {d for d in direct if kinds.get(d) in NETWORK_KINDS}
    if kinds.get(rid) in POLLER_KINDS:
        for cluster in (d for d in direct if kinds.get(d) == "msk_serverless_cluster"):
            out |= {d for d in deps.get(cluster, ()) if kinds.get(d) in NETWORK_KINDS}
    return out


def critical_path(mode: str, deps, calls, delays: dict[str, float], parallelism: int = 10,
                  kinds: dict[str, str] | None = None, vpc_delays: dict[str, float] | None = None,
                  lingers: dict[str, float] | None = None):
    kinds = kinds or {}
    vpc_delays = vpc_delays or {}
    lingers = lingers or {}
    scoped = [c for c in calls if c[4] != "-"]
    unscoped = [c for c in calls if c[4] == "-"]
    per_op: dict[tuple[str, str, str], list] = defaultdict(list)
    for start, end, action, kind, rid, op, refused in scoped:
        per_op[(rid, action, kind)].append((start, end, op, refused))
    cost: dict[str, float] = defaultdict(float)
    # Destroy: (owner, seconds from the owner's start to the interfaces' release) per held resource.
    held: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (rid, action, kind), ops in per_op.items():
        delay = delays.get(f"{kind}:{action}", 0.0)
        if in_vpc(rid, deps, kinds):
            delay += vpc_delays.get(f"{kind}:{action}", 0.0)
        cost[rid] += op_cost(ops, delay)
        if mode == "destroy" and action == "delete" and kind in lingers:
            release = delete_call_span(ops) + lingers[kind]
            for target in interface_network(rid, deps, kinds):
                held[target].append((rid, release))
    waits_for: dict[str, set[str]] = defaultdict(set)
    for rid, ds in deps.items():
        for d in ds:
            if mode == "apply":
                waits_for[rid].add(d)
            else:
                waits_for[d].add(rid)
    memo: dict[str, float] = {}

    def path(rid: str, seen: frozenset = frozenset()) -> float:
        if rid in memo:
            return memo[rid]
        if rid in seen:
            return 0.0
        before = max((path(d, seen | {rid}) for d in waits_for.get(rid, ())), default=0.0)
        for owner, release in held.get(rid, ()):
            # The owner started at path(owner) - cost(owner); its interfaces go `release` later.
            before = max(before, path(owner, seen | {rid}) - cost[owner] + release)
        memo[rid] = cost.get(rid, 0.0) + before
        return memo[rid]

    chain = max((path(r) for r in set(cost) | set(deps)), default=0.0)
    # With at most `parallelism` operations at once, the walk also needs all the work divided
    # among them: the bound is whichever is longer.
    walk_bound = max(chain, sum(cost.values()) / parallelism)
    first = min((c[0] for c in scoped), default=None)
    last = max((c[1] for c in scoped), default=None)
    pre = [c for c in unscoped if first is None or c[1] <= first]
    post = [c for c in unscoped if last is not None and c[0] >= last]
    span = lambda cs: (max(c[1] for c in cs) - min(c[0] for c in cs)) if cs else 0.0  # noqa: E731
    walk = (last - first) if scoped else 0.0
    return span(pre) + walk_bound + span(post), walk_bound, walk, len(calls)


def pairs(values: list[str], flag: str) -> dict[str, float]:
    out = {}
    for d in values:
        key, sep, value = d.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sys.exit(f"{flag} {d}: expected NAME=SECONDS")
        if not sep or not key:
            sys.exit(f"{flag} {d}: expected NAME=SECONDS")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["apply", "destroy"])
    parser.add_argument("log")
    parser.add_argument("--delay", action="append", default=[], help="KIND:ACTION=SECONDS")
    parser.add_argument("--vpc-delay", action="append", default=[],
                        help="KIND:ACTION=SECONDS, for resources of KIND with a subnet among their dependencies")
    parser.add_argument("--linger", action="append", default=[],
                        help="KIND=SECONDS: its network interfaces hold their subnets and groups that long after its delete call")
    parser.add_argument("--parallelism", type=int, default=10, help="mskctl's --parallelism (default 10)")
    args = parser.parse_args()
    delays = pairs(args.delay, "--delay")
    vpc_delays = pairs(args.vpc_delay, "--vpc-delay")
    lingers = pairs(args.linger, "--linger")
    deps, kinds, calls = parse(args.log)
    if not calls:
        sys.exit(f"{args.log}: no calls logged")
    total, chain, walk, n = critical_path(args.mode, deps, calls, delays, max(args.parallelism, 1),
                                          kinds, vpc_delays, lingers)
    ratio = walk / chain if chain else 0.0
    print(f"critical_path_s={total:.2f} chain_s={chain:.2f} walk_s={walk:.2f} walk/chain={ratio:.2f} calls={n}")


if __name__ == "__main__":
    main()
