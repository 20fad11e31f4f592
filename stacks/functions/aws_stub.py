"""Test helper (not deployed): stand-ins for boto3 and botocore.exceptions, for the handlers'
unit tests of how they treat AWS answers (the Lambda runtime provides the real boto3; the
handlers' test virtualenv does not have it, and the calls themselves are exercised against the
local AWS emulator by mskctl's integration tests).

    with aws_stub.installed({"secretsmanager": {"get_secret_value": lambda **kw: {...}}}) as calls:
        ...   # boto3.client("secretsmanager").get_secret_value(...) runs the lambda; calls records them
"""

import contextlib
import sys
import types


class ClientError(Exception):
    def __init__(self, code, operation):
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation")
        self.response = {"Error": {"Code": code, "Message": "stub"}}


class BotoCoreError(Exception):
    pass


class EndpointConnectionError(BotoCoreError):
    pass


@contextlib.contextmanager
def installed(services):
    """boto3.client(name) answers with the operations given for `name`; yields the calls made."""
    calls = []

    def client(name, **_):
        operations = services[name]

        class Client:
            def __getattr__(self, operation):
                def call(**kwargs):
                    calls.append((name, operation, kwargs))
                    return operations[operation](**kwargs)

                return call

        return Client()

    boto3 = types.ModuleType("boto3")
    boto3.client = client
    botocore = types.ModuleType("botocore")
    exceptions = types.ModuleType("botocore.exceptions")
    exceptions.ClientError = ClientError
    exceptions.BotoCoreError = BotoCoreError
    botocore.exceptions = exceptions
    saved = {name: sys.modules.get(name) for name in ("boto3", "botocore", "botocore.exceptions")}
    sys.modules.update({"boto3": boto3, "botocore": botocore, "botocore.exceptions": exceptions})
    try:
        yield calls
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
