"""The benchmark's bound (critical_path.py) on small call logs written by hand."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))

import critical_path as cp  # noqa: E402


def log(text: str) -> str:
    """A call log file with `text` (times in seconds, written as the log's microseconds)."""
    lines = []
    for line in text.strip().splitlines():
        parts = line.split()
        if parts[0] == "call":
            parts[1] = str(int(float(parts[1]) * 1e6))
            parts[2] = str(int(float(parts[2]) * 1e6))
        lines.append(" ".join(parts))
    f = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    f.write("\n".join(lines) + "\n")
    f.close()
    return f.name


def chain(mode: str, text: str, **kw) -> float:
    deps, kinds, calls = cp.parse(log(text))
    _, chain_s, _, _ = cp.critical_path(mode, deps, calls, kw.pop("delays", {}), 10, kinds, **kw)
    return round(chain_s, 3)


class CriticalPathTest(unittest.TestCase):
    def test_a_function_in_the_stacks_subnets_is_pending_while_its_interfaces_attach(self):
        text = """
            dep sub subnet
            dep in_vpc lambda_function sub
            dep outside lambda_function
            call 0.0 0.1 create subnet sub EC2.CreateSubnet
            call 0.1 0.2 create lambda_function in_vpc Lambda.CreateFunction
            call 0.3 0.31 create lambda_function in_vpc Lambda.GetFunctionConfiguration
            call 1.2 1.21 create lambda_function in_vpc Lambda.GetFunctionConfiguration
            call 0.0 0.1 create lambda_function outside Lambda.CreateFunction
        """
        # Without the delay only the calls count (the polls as their last one).
        self.assertEqual(chain("apply", text), 0.21)
        # 1 s Pending for the function with a subnet among its dependencies, not the other.
        self.assertEqual(chain("apply", text, vpc_delays={"lambda_function:create": 1.0}), 1.21)
        text_outside_only = text.replace("dep in_vpc lambda_function sub", "dep in_vpc lambda_function")
        self.assertEqual(chain("apply", text_outside_only, vpc_delays={"lambda_function:create": 1.0}), 0.11)

    def test_refused_attempts_are_waiting_and_lingering_interfaces_hold_the_subnet(self):
        text = """
            dep vpc vpc
            dep sub subnet vpc
            dep role iam_role
            dep fn lambda_function sub role
            call 0.0 0.1 delete lambda_function fn Lambda.DeleteFunction
            call 0.1 0.15 delete lambda_function fn Lambda.GetFunction
            refused 404
            call 0.15 0.25 delete iam_role role IAM.DeleteRole
            call 0.15 0.2 delete subnet sub EC2.DeleteSubnet
            refused 400
            call 0.2 0.25 delete subnet sub EC2.DescribeNetworkInterfaces
            call 0.5 0.55 delete subnet sub EC2.DeleteSubnet
            refused 400
            call 2.2 2.25 delete subnet sub EC2.DeleteSubnet
            call 2.25 2.3 delete vpc vpc EC2.DeleteVpc
        """
        # The subnet costs its last attempt only: fn 0.15, subnet 0.05, vpc 0.05.
        self.assertEqual(chain("destroy", text), 0.25)
        # The function's interfaces go 2 s after its DeleteFunction returned (0.1 s into its
        # operation): the subnet's last attempt from 2.1 s, the VPC after it. The role is not held.
        self.assertEqual(chain("destroy", text, lingers={"lambda_function": 2.0}), 2.2)

    def test_pollers_interfaces_are_in_their_clusters_subnets_and_groups(self):
        deps = {
            "sub": set(), "sg": set(), "fn_sg": set(),
            "cluster": {"sub", "sg"},
            "fn": {"fn_sg", "sub", "cluster"},
            "esm": {"cluster", "fn"},
        }
        kinds = {"sub": "subnet", "sg": "security_group", "fn_sg": "security_group",
                 "cluster": "msk_serverless_cluster", "fn": "lambda_function",
                 "esm": "event_source_mapping"}
        self.assertEqual(cp.interface_network("esm", deps, kinds), {"sub", "sg"})
        # A function naming the cluster (its ARN in the environment) is not in the cluster's group.
        self.assertEqual(cp.interface_network("fn", deps, kinds), {"fn_sg", "sub"})
        self.assertEqual(cp.interface_network("cluster", deps, kinds), {"sub", "sg"})


if __name__ == "__main__":
    unittest.main()
