"""Runs one Python Lambda invocation in a child of the emulator (see lambda_invoke.py).

    python -I -S lambda_runner.py CODE_DIR RUNTIME_DIR HANDLER REQUEST_FILE RESULT_FILE

Started with `-I -S`: no site-packages, no user site, no PYTHON* variables, so the
import path is the function's code (CODE_DIR, as /var/task), then RUNTIME_DIR (boto3,
botocore and their dependencies, as the Lambda Python runtime provides), then the
standard library. REQUEST_FILE holds {"event", "context"}; the outcome is written to
RESULT_FILE as {"ok": <result>} or {"error": {errorMessage, errorType, stackTrace}}.
What the handler prints goes to stdout/stderr, as its log.
"""

import ctypes
import importlib
import json
import os
import signal
import sys
import time
import traceback


def die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Context:
    """The Python runtime's context object (the members handlers use)."""

    def __init__(self, spec: dict, deadline: float) -> None:
        self.function_name = spec["function_name"]
        self.function_version = spec["function_version"]
        self.invoked_function_arn = spec["invoked_function_arn"]
        self.memory_limit_in_mb = spec["memory_limit_in_mb"]
        self.aws_request_id = spec["aws_request_id"]
        self.log_group_name = spec["log_group_name"]
        self.log_stream_name = spec["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def error(kind: str, message: str, trace: list[str] | None = None) -> dict:
    return {"errorMessage": message, "errorType": kind, "stackTrace": trace or []}


def run(code_dir: str, runtime_dir: str, handler: str, request: dict) -> dict:
    sys.path[:0] = [code_dir, runtime_dir]
    os.chdir(code_dir)
    module_name, _, func_name = handler.rpartition(".")
    if not module_name:
        return {"error": error("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")}
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as exc:
        return {"error": error("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}",
                               [f'  File "{exc.filename}" Line {exc.lineno}\n', f"    {(exc.text or '').strip()}\n"])}
    except ImportError as exc:
        return {"error": error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")}
    except Exception as exc:  # an exception at import time (the "init phase")
        return {"error": error(type(exc).__name__, str(exc), traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]))}
    func = getattr(module, func_name, None)
    if func is None:
        return {"error": error("Runtime.HandlerNotFound", f"Handler '{func_name}' missing on module '{module_name}'")}
    context = Context(request["context"], request["deadline"])
    try:
        result = func(request["event"], context)
    except Exception as exc:
        trace = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
        print(f"[ERROR] {type(exc).__name__}: {exc}\nTraceback (most recent call last):\n{''.join(trace)}",
              file=sys.stderr, end="")
        return {"error": error(type(exc).__name__, str(exc), trace)}
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return {"error": error("Runtime.MarshalError", f"Unable to marshal response: {exc}")}
    return {"ok": result}


def main() -> None:
    die_with_parent()
    code_dir, runtime_dir, handler, request_file, result_file = sys.argv[1:6]
    with open(request_file) as f:
        request = json.load(f)
    outcome = run(code_dir, runtime_dir, handler, request)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(result_file, "w") as f:
        json.dump(outcome, f)


if __name__ == "__main__":
    main()
