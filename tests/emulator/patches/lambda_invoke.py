"""Lambda Invoke runs Python handlers for real.

moto runs handlers only in Docker, which the test machines do not have; without it,
Invoke answers a canned "Simple Lambda happy path OK". This patch runs a python3.x
function of package type Zip in a child process of the emulator's own Python
(lambda_runner.py), as the Lambda Python runtime would:

- the code: the function's zip, unpacked once per CodeSha256 into a temporary directory;
- the import path: the code directory (/var/task), then boto3, botocore and their
  dependencies (what the runtime provides), then the standard library. Nothing else of
  the emulator's virtualenv (moto, flask, kafka-python...): a package that forgot a
  dependency fails with Runtime.ImportModuleError, as on AWS;
- the environment: the function's Environment.Variables, AWS_REGION/AWS_DEFAULT_REGION,
  the runtime's AWS_LAMBDA_* variables, test credentials, AWS_ENDPOINT_URL = the
  emulator (so boto3 in the handler calls it), and KAFKA_SECURITY_OVERRIDE=plaintext
  (the local broker, kafka_broker.py, has no IAM authentication);
- the function's Timeout is enforced (the child is killed).

Replies follow the Invoke API reference. Other runtimes keep moto's behaviour.
"""

import atexit
import base64
import hashlib
import importlib.metadata
import io
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.responses import LambdaResponse

RUNNER = Path(__file__).resolve().parent / "lambda_runner.py"
# "The Init phase is limited to 10 seconds" (Lambda execution environment lifecycle).
INIT_SECONDS = 10.0
# What the Lambda Python runtime has besides the standard library.
RUNTIME_DISTRIBUTIONS = ["boto3"]
LOG_TAIL_BYTES = 4096

_endpoint = ""
_lock = threading.RLock()
_workdir: Path | None = None
_runtime_dir: Path | None = None


class FunctionNotReady(LambdaClientError):
    code = 409

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


class Throttled(LambdaClientError):
    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")
        body = json.loads(self.description)
        body["Reason"] = "ReservedFunctionConcurrentInvocationLimitExceeded"
        self.description = json.dumps(body)


def set_endpoint(url: str) -> None:
    """The emulator's own URL, given to handlers as AWS_ENDPOINT_URL (set by the launcher)."""
    global _endpoint
    _endpoint = url


WORKDIR_PREFIX = "emulator-lambda-"


def _sweep_stale_workdirs() -> None:
    """Removes the work directories of launchers that are gone (at each cold start): a killed
    launcher (the Rust harness ends each test's emulator with SIGKILL) cannot remove its own."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        pid = path.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


def _work() -> Path:
    global _workdir
    with _lock:
        if _workdir is None:
            _sweep_stale_workdirs()
            _workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
            atexit.register(shutil.rmtree, _workdir, True)
    return _workdir


def _requirements(dist: importlib.metadata.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if "extra" in req.partition(";")[2]:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", req)
        if match:
            names.append(match.group(0))
    return names


def _top_level(dist: importlib.metadata.Distribution) -> set[str]:
    tops = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first.endswith((".dist-info", ".egg-info", ".pth")) or first in ("..", "__pycache__", "bin"):
            continue
        tops.add(first)
    return tops


def runtime_dir() -> Path:
    """A directory of links to boto3, botocore and their dependencies (closure)."""
    global _runtime_dir
    with _lock:
        if _runtime_dir is not None:
            return _runtime_dir
        target = _work() / "runtime"
        target.mkdir()
        seen: set[str] = set()
        todo = list(RUNTIME_DISTRIBUTIONS)
        while todo:
            name = todo.pop()
            key = name.lower().replace("_", "-")
            if key in seen:
                continue
            seen.add(key)
            dist = importlib.metadata.distribution(name)
            todo.extend(_requirements(dist))
            for top in _top_level(dist):
                source = Path(dist.locate_file(top))
                if source.exists() and not (target / top).exists():
                    (target / top).symlink_to(source)
        _runtime_dir = target
        return target


def code_dir(fn: Any) -> Path:
    """The function's zip, unpacked once per CodeSha256."""
    digest = fn.code_sha_256 or hashlib.sha256(fn.code_bytes).hexdigest()
    safe = hashlib.sha256(digest.encode()).hexdigest()[:32]
    target = _work() / "code" / safe
    with _lock:
        if not target.exists():
            partial = target.with_name(safe + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as z:
                for info in z.infolist():
                    z.extract(info, partial)
                    mode = info.external_attr >> 16
                    if mode & 0o111:
                        os.chmod(partial / info.filename, mode & 0o777)
            partial.rename(target)
    return target


def runs_here(fn: Any) -> bool:
    return (fn.run_time or "").startswith("python3") and (fn.package_type or "Zip") == "Zip" \
        and bool(getattr(fn, "code_bytes", b""))


def _environment(fn: Any, code: Path) -> dict[str, str]:
    region = fn.region
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
    env.update({
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "test",
        "AWS_ENDPOINT_URL": _endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[{fn.version}]{uuid.uuid4().hex}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "LAMBDA_TASK_ROOT": str(code),
        "KAFKA_SECURITY_OVERRIDE": "plaintext",
    })
    return env


class Environment:
    """One warm execution environment: a lambda_runner.py process serving invocations."""

    def __init__(self, fn: Any, key: tuple) -> None:
        _sweep_stale_workdirs()
        code = code_dir(fn)
        self.key = key
        self.proc = _spawn(
            [sys.executable, "-I", "-S", str(RUNNER), str(code), str(runtime_dir()), fn.handler or ""],
            _environment(fn, code), str(code),
        )
        self.last_used = time.monotonic()
        self.fresh = True  # its first invocation includes the init phase

    def invoke(self, request: dict[str, Any], timeout: float) -> tuple[dict[str, Any] | None, bool]:
        """(the outcome line, False), or (None, timed out?) if the environment died or the
        invocation outlived its time (then it is killed): the function's timeout from the
        handler's start, plus, for a fresh environment, up to INIT_SECONDS for the init phase
        (importing the handler's module), which AWS does not count in the timeout."""
        init_limit = INIT_SECONDS if self.fresh else timeout
        self.fresh = False
        box: list[Any] = []
        started = threading.Event()

        def exchange() -> None:
            try:
                self.proc.stdin.write((json.dumps(request) + "\n").encode())
                self.proc.stdin.flush()
                while True:
                    line = self.proc.stdout.readline()
                    message = json.loads(line) if line else None
                    if message is not None and message.get("phase") == "handler":
                        started.set()
                        continue
                    box.append(message)
                    return
            except (OSError, ValueError):
                box.append(None)

        worker = threading.Thread(target=exchange, daemon=True)
        worker.start()
        limit = time.monotonic() + init_limit
        while not started.is_set() and worker.is_alive() and time.monotonic() < limit:
            started.wait(0.01)
        if started.is_set():
            worker.join(timeout)
        if worker.is_alive() or not box or box[0] is None:
            timed_out = worker.is_alive()
            self.kill()
            worker.join(5)
            return None, timed_out
        return box[0], False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


_idle: dict[tuple, list[Environment]] = {}
_spawn_requests: "queue.Queue[tuple[list[str], dict[str, str], str, queue.Queue]]" = queue.Queue()
_spawner: threading.Thread | None = None


def _spawn(args: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen:
    """Starts a process from one long-lived thread: the children's parent-death signal
    (lambda_runner.die_with_parent) fires when the thread that forked them ends, and warm
    environments outlive the request threads."""
    global _spawner
    with _lock:
        if _spawner is None:
            def serve() -> None:
                while True:
                    a, e, c, reply = _spawn_requests.get()
                    try:
                        reply.put(subprocess.Popen(a, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                   stderr=subprocess.DEVNULL, env=e, cwd=c))
                    except OSError as error:
                        reply.put(error)

            _spawner = threading.Thread(target=serve, name="lambda-spawner", daemon=True)
            _spawner.start()
    reply: queue.Queue = queue.Queue()
    _spawn_requests.put((args, env, cwd, reply))
    result = reply.get()
    if isinstance(result, OSError):
        raise result
    return result


def idle_seconds() -> float:
    raw = os.environ.get("EMULATOR_LAMBDA_IDLE_SECONDS", "300") or "0"
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 300.0


def _key(fn: Any) -> tuple:
    """What an environment is made of: a new one after any change of code or configuration."""
    return (fn.function_arn, fn.code_sha_256, fn.handler, fn.run_time, fn.timeout, fn.memory_size,
            json.dumps(fn.environment_vars or {}, sort_keys=True), fn.last_modified)


def _take(fn: Any) -> Environment:
    """An idle environment of the function as it is now, else a new one (a cold start).
    Environments idle longer than EMULATOR_LAMBDA_IDLE_SECONDS, or dead, are ended."""
    key = _key(fn)
    now = time.monotonic()
    stale: list[Environment] = []
    found = None
    with _lock:
        for k, envs in _idle.items():
            fresh = [e for e in envs if now - e.last_used <= idle_seconds() and e.alive()]
            stale.extend(e for e in envs if e not in fresh)
            _idle[k] = fresh
        if _idle.get(key):
            found = _idle[key].pop()
    for env in stale:
        env.kill()
    return found or Environment(fn, key)


def _give_back(env: Environment) -> None:
    env.last_used = time.monotonic()
    if idle_seconds() <= 0:
        env.kill()
        return
    with _lock:
        _idle.setdefault(env.key, []).append(env)


def stop_all() -> None:
    """Ends every warm environment (the launcher's exit)."""
    with _lock:
        envs = [e for envs in _idle.values() for e in envs]
        _idle.clear()
    for env in envs:
        env.kill()


atexit.register(stop_all)


def run(fn: Any, event: Any, request_id: str) -> tuple[dict[str, Any], str, float]:
    """Runs the handler once in a warm environment (or a new one): ({"ok": result} or
    {"error": {...}}, log text, seconds)."""
    timeout = float(fn.timeout or 3)
    started = time.monotonic()
    env = _take(fn)
    fd, log_path = tempfile.mkstemp(dir=_work(), suffix=".log")
    os.close(fd)
    try:
        outcome, timed_out = env.invoke({
            "event": event,
            "timeout": timeout,
            "log": log_path,
            "context": {
                "function_name": fn.function_name,
                "function_version": str(fn.version),
                "invoked_function_arn": fn.function_arn,
                "memory_limit_in_mb": str(fn.memory_size),
                "aws_request_id": request_id,
                "log_group_name": f"/aws/lambda/{fn.function_name}",
                "log_stream_name": f"{time.strftime('%Y/%m/%d')}/[{fn.version}]{uuid.uuid4().hex}",
            },
        }, timeout)
        elapsed = time.monotonic() - started
        log = Path(log_path).read_text(errors="replace")
    finally:
        os.unlink(log_path)
    if outcome is None:
        if timed_out:
            outcome = {"error": {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            }}
            log += f"{time.strftime('%Y-%m-%dT%H:%M:%S')}Z {request_id} Task timed out after {timeout:.2f} seconds\n"
        else:
            outcome = {"error": {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {env.proc.returncode}",
            }}
    elif outcome.pop("fatal", False):
        env.kill()
    else:
        _give_back(env)
    if "error" in outcome:
        outcome["error"].setdefault("requestId", request_id)
    return outcome, log, elapsed


def _log_record(fn: Any, request_id: str, log: str, elapsed: float) -> str:
    ms = elapsed * 1000
    return (
        f"START RequestId: {request_id} Version: {fn.version}\n{log}"
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {ms:.2f} ms\tBilled Duration: {int(ms) + 1} ms\t"
        f"Memory Size: {fn.memory_size} MB\tMax Memory Used: {fn.memory_size} MB\t\n"
    )


def check_invocable(fn: Any) -> None:
    """AWS refuses to invoke a function that is not Active, or reserved to 0 concurrency."""
    state = fn.get_configuration().get("State", "Active")
    if state != "Active":
        raise FunctionNotReady(
            f"The operation cannot be performed at this time. The function is currently in the following state: {state}"
        )
    if fn.reserved_concurrency is not None and int(fn.reserved_concurrency) == 0:
        raise Throttled()


def invoke_sync(fn: Any, event: Any) -> tuple[dict[str, Any], str]:
    """One RequestResponse invocation: (outcome, log record). For API Gateway."""
    request_id = str(uuid.uuid4())
    outcome, log, elapsed = run(fn, event, request_id)
    return outcome, _log_record(fn, request_id, log, elapsed)


def _event_of(body: bytes) -> Any:
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError:
        raise LambdaClientError(
            "InvalidRequestContentException", "Could not parse request body into json: Could not parse payload into json"
        ) from None


def patch_invoke_runs_python_handlers() -> None:
    original = LambdaResponse.invoke

    def invoke(self: LambdaResponse) -> Any:
        function_name = self.path.rsplit("/", 2)[-2]
        from urllib.parse import unquote

        fn = self.backend.get_function(unquote(function_name), self._get_param("qualifier"))
        if not runs_here(fn):
            return original(self)
        kind = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise LambdaClientError(
                "ValidationException",
                f"1 validation error detected: Value '{kind}' at 'invocationType' failed to satisfy constraint: "
                "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
            )
        check_invocable(fn)
        event = _event_of(self.body if isinstance(self.body, bytes) else (self.body or "").encode())
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": str(fn.version)}
        if kind == "DryRun":
            return 204, {**headers, "status": "204"}, ""
        if kind == "Event":
            def background() -> None:
                outcome, log, elapsed = run(fn, event, request_id)
                if os.environ.get("EMULATOR_LOG_REQUESTS"):
                    sys.stderr.write(_log_record(fn, request_id, log, elapsed))

            threading.Thread(target=background, daemon=True).start()
            return 202, {**headers, "status": "202"}, ""
        outcome, log, elapsed = run(fn, event, request_id)
        headers["Content-Type"] = "application/json"
        if "error" in outcome:
            headers["X-Amz-Function-Error"] = "Unhandled"
            payload = json.dumps(outcome["error"])
        else:
            payload = json.dumps(outcome["ok"])
        if self.headers.get("X-Amz-Log-Type") == "Tail":
            tail = _log_record(fn, request_id, log, elapsed).encode()[-LOG_TAIL_BYTES:]
            headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode()
        return 200, {**headers, "status": "200"}, payload

    LambdaResponse.invoke = invoke
