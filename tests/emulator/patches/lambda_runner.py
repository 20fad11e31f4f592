"""A Python Lambda execution environment, a child of the emulator (see lambda_invoke.py).

    python -I -S lambda_runner.py CODE_DIR RUNTIME_DIR HANDLER

Started with `-I -S`: no site-packages, no user site, no PYTHON* variables, so the
import path is the function's code (CODE_DIR, as /var/task), then RUNTIME_DIR (boto3,
botocore and their dependencies, as the Lambda Python runtime provides), then the
standard library.

It serves invocations one at a time, as a warm Lambda environment does: each line on
stdin is a request {"event", "context", "timeout", "log"}; the handler's module is
imported at the first one (the init phase) and kept; the line {"phase": "handler"} on the
original stdout says the handler starts. What the handler prints during an
invocation goes to the file named by "log"; the outcome is one line on the original
stdout: {"ok": <result>} or {"error": {errorMessage, errorType, stackTrace}}, plus
"fatal": true when the environment cannot be reused (an init failure).
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


def load(handler: str) -> tuple[object | None, dict | None]:
    """The handler function, or the init error."""
    module_name, _, func_name = handler.rpartition(".")
    if not module_name:
        return None, error("Runtime.MalformedHandlerName",
                           f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as exc:
        return None, error("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}",
                           [f'  File "{exc.filename}" Line {exc.lineno}\n', f"    {(exc.text or '').strip()}\n"])
    except ImportError as exc:
        return None, error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    except Exception as exc:  # an exception at import time (the init phase)
        trace = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
        return None, error(type(exc).__name__, str(exc), trace)
    func = getattr(module, func_name, None)
    if func is None:
        return None, error("Runtime.HandlerNotFound", f"Handler '{func_name}' missing on module '{module_name}'")
    return func, None


def invoke(func: object, request: dict) -> dict:
    # The function's timeout runs from the handler's start (the init phase is not counted).
    context = Context(request["context"], time.time() + float(request["timeout"]))
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
    code_dir, runtime_dir, handler = sys.argv[1:4]
    sys.path[:0] = [code_dir, runtime_dir]
    os.chdir(code_dir)
    control = os.fdopen(os.dup(1), "w")  # outcomes; fds 1 and 2 carry each invocation's log
    requests = os.fdopen(os.dup(0), "r")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    func = None
    for line in requests:
        request = json.loads(line)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        fatal = False
        if func is None:
            func, init_error = load(handler)
            if init_error is not None:
                outcome, fatal = {"error": init_error}, True
        if func is not None:
            control.write('{"phase": "handler"}\n')  # the init phase is over: the timeout runs
            control.flush()
            outcome = invoke(func, request)
        sys.stdout.flush()
        sys.stderr.flush()
        control.write(json.dumps({**outcome, "fatal": fatal}) + "\n")
        control.flush()
        if fatal:
            return


if __name__ == "__main__":
    main()
