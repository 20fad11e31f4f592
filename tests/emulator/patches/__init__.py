"""Patches that make moto 5.2.5 behave like AWS for mskctl's stack.

Each patch is one function named after what it fixes; `apply_all` applies
them in order. tests/emulator/README.md lists them with the moto gap each one
closes and the test in test_patches.py that proves it.
"""

from . import ec2, faults, iam, kafka, lambda_esm, lambda_functions, pipes, replies, ssm, tagging, vpc
from . import lambda_invoke
from . import throttle
from . import pollers

PATCHES = [
    kafka.patch_creation_time_rfc3339,
    kafka.patch_cluster_arn_format,
    kafka.patch_cluster_lifecycle,
    kafka.patch_get_bootstrap_brokers,
    iam.patch_iam_propagation,
    iam.patch_iam_concurrent_modification,
    lambda_functions.patch_dead_letter_config,
    lambda_functions.patch_other_accounts_layers,
    lambda_functions.patch_event_invoke_config_put_replaces,
    lambda_functions.patch_role_propagation,
    lambda_functions.patch_tracing_config_update,
    lambda_functions.patch_reserved_concurrency,
    lambda_esm.patch_kafka_event_source_mappings,
    ec2.patch_nat_gateway_client_token,
    ec2.patch_nat_gateway_delete_frees_address,
    ec2.patch_network_interfaces_block_deletion,
    ec2.patch_group_references_block_deletion,
    ec2.patch_security_group_rules,
    ec2.patch_eventual_consistency,
    pipes.patch_pipe_lifecycle,
    vpc.patch_lambda_vpc_network_interfaces,
    vpc.patch_vpc_endpoint_lifecycle,
    vpc.patch_nat_gateway_lifecycle,
    # After kafka, lambda_esm and pipes: wraps what they return.
    pollers.patch_msk_cluster_network_interfaces,
    pollers.patch_kafka_mapping_network_interfaces,
    pollers.patch_pipe_network_interfaces,
    ssm.patch_put_parameter_atomic,
    tagging.patch_tagging_index_lags,
    faults.patch_throttling,
    # AWS's default request rates (EMULATOR_THROTTLE=aws): answers before any fault or moto.
    throttle.patch_default_rate_limits,
    lambda_invoke.patch_invoke_runs_python_handlers,
    replies.patch_client_tokens,
    # Last: wraps every other patch, so a dropped reply's call has had its full effect.
    replies.patch_dropped_replies,
]


def apply_all() -> None:
    for patch in PATCHES:
        patch()
