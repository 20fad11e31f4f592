"""The critical path of one apply or destroy, from mskctl's call log (MSKCTL_CALL_LOG).

    critical_path.py apply|destroy LOG [--delay KIND:ACTION=SECONDS ...]

Definition (README, Benchmark): each resource operation costs the measured duration of the
calls it made (calls in flight at the same time count once: the time covered by at least one
of them), where a wait's repeated polls (the same read operation several times in a row)
count as their last poll only, plus the provisioning time the
emulator was told to take for that kind and action (`--delay`). A resource's path is its
own cost plus the longest path among the resources it waits for (its dependencies for
apply; its dependents for destroy). The walk needs at least the longest resource path, and at
least the sum of all costs divided by the parallelism (mskctl's default 10): `chain_s` is the
larger of the two. The critical path is `chain_s` plus the
calls outside any resource operation before the first one (identity, lock, bulk read,
measured as their span) and after the last one (final read, unlock). It is what this run's
own calls would take if every resource started the moment its dependencies finished and
every wait ended the moment the resource was ready.

Prints `critical_path_s=… chain_s=… walk_s=… walk/chain=… calls=…` on one line: `chain_s` is the
longest resource path alone, `walk_s` the span from the first to the last resource call, so
`walk/chain` measures the walk itself without the fixed reads before and after it.
"""

import argparse
import sys
from collections import defaultdict

READS = ("Describe", "Get", "List")


def parse(path: str):
    deps: dict[str, set[str]] = {}
    calls = []  # (start, end, action, kind, id, op)
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "dep":
                deps[parts[1]] = set(parts[3:])
            elif parts[0] == "call" and len(parts) == 7:
                start, end, action, kind, rid, op = parts[1:]
                calls.append((int(start) / 1e6, int(end) / 1e6, action, kind, rid, op))
    return deps, calls


def op_cost(ops: list[tuple[float, float, str]], delay: float) -> float:
    ops = sorted(ops)
    kept = []
    for i, (start, end, op) in enumerate(ops):
        polled_again = i + 1 < len(ops) and ops[i + 1][2] == op and op.split(".", 1)[-1].startswith(READS)
        if not polled_again:
            kept.append((start, end))
    # Calls in flight together (a table's routes, a group's ingress and egress) cost their
    # span once, not their sum: the time covered by at least one call.
    cost, reach = 0.0, float("-inf")
    for start, end in kept:
        if end > reach:
            cost += end - max(start, reach)
            reach = end
    return cost + delay


def critical_path(mode: str, deps, calls, delays: dict[str, float], parallelism: int = 10):
    scoped = [c for c in calls if c[4] != "-"]
    unscoped = [c for c in calls if c[4] == "-"]
    per_op: dict[tuple[str, str, str], list] = defaultdict(list)
    for start, end, action, kind, rid, op in scoped:
        per_op[(rid, action, kind)].append((start, end, op))
    cost: dict[str, float] = defaultdict(float)
    for (rid, action, kind), ops in per_op.items():
        cost[rid] += op_cost(ops, delays.get(f"{kind}:{action}", 0.0))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["apply", "destroy"])
    parser.add_argument("log")
    parser.add_argument("--delay", action="append", default=[], help="KIND:ACTION=SECONDS")
    parser.add_argument("--parallelism", type=int, default=10, help="mskctl's --parallelism (default 10)")
    args = parser.parse_args()
    delays = {}
    for d in args.delay:
        key, _, value = d.partition("=")
        delays[key] = float(value)
    deps, calls = parse(args.log)
    if not calls:
        sys.exit(f"{args.log}: no calls logged")
    total, chain, walk, n = critical_path(args.mode, deps, calls, delays, max(args.parallelism, 1))
    ratio = walk / chain if chain else 0.0
    print(f"critical_path_s={total:.2f} chain_s={chain:.2f} walk_s={walk:.2f} walk/chain={ratio:.2f} calls={n}")


if __name__ == "__main__":
    main()
