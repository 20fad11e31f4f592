"""Writes a large stack file for scripts/bench: `gen_stack.py N [OUT]` (default N=1000, OUT=-).

The stack has N resources: a small network (VPC, two subnets, internet gateway, route
table, security group), then IAM roles (15%), SQS queues (65%) and Lambda functions (20%)
that each run with one of the roles and share stacks/functions/msk_processor's code. It
uses only the stack-file syntax of docs/stack-file.md, so it plans and applies like any
other stack.
"""

import sys
from pathlib import Path

CODE = (Path(__file__).resolve().parents[2] / "stacks" / "functions" / "msk_processor").as_posix()


def stack(n: int, name: str = "bench") -> str:
    out = [
        f"stack: {name}",
        "region: ap-northeast-1",
        "tags: {project: mskctl-bench}",
        "resources:",
        "  vpc: {type: vpc, cidr_block: 10.20.0.0/16, enable_dns_support: true, enable_dns_hostnames: true}",
        "  subnet_a: {type: subnet, vpc: vpc, cidr_block: 10.20.0.0/24, availability_zone: ap-northeast-1a}",
        "  subnet_c: {type: subnet, vpc: vpc, cidr_block: 10.20.1.0/24, availability_zone: ap-northeast-1c}",
        "  igw: {type: internet_gateway, vpc: vpc}",
        "  routes:",
        "    type: route_table",
        "    vpc: vpc",
        "    routes: [{destination: 0.0.0.0/0, gateway: igw}]",
        "    subnets: [subnet_a, subnet_c]",
        "  clients:",
        "    type: security_group",
        "    vpc: vpc",
        "    description: bench clients",
        "    ingress: [{protocol: tcp, from_port: 443, to_port: 443, cidr: 10.20.0.0/16, description: https}]",
    ]
    rest = max(n - 6, 0)
    roles = max(rest * 15 // 100, 1) if rest else 0
    functions = rest * 20 // 100
    queues = rest - roles - functions
    for i in range(roles):
        out += [
            f"  role_{i:04d}:",
            "    type: iam_role",
            f"    name: ${{stack.name}}-role-{i:04d}",
            "    trust: [lambda.amazonaws.com]",
            "    managed_policy_arns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "    policies:",
            "      send:",
            '        Version: "2012-10-17"',
            "        Statement: [{Effect: Allow, Action: sqs:SendMessage, Resource: \"*\"}]",
        ]
    for i in range(queues):
        out.append(f"  queue_{i:04d}: {{type: sqs_queue, name: \"${{stack.name}}-queue-{i:04d}\", visibility_timeout: 60}}")
    for i in range(functions):
        out += [
            f"  function_{i:04d}:",
            "    type: lambda_function",
            f"    name: ${{stack.name}}-function-{i:04d}",
            f"    code: {CODE}",
            "    handler: msk_processor.lambda_handler",
            "    runtime: python3.12",
            f"    role: role_{i % roles:04d}",
        ]
    return "\n".join(out) + "\n"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    text = stack(n)
    if len(sys.argv) > 2 and sys.argv[2] != "-":
        Path(sys.argv[2]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
