//! Shared test harness: one patched local AWS emulator per test (isolated state), the real
//! `mskctl` binary pointed at it, and SDK clients to check live state directly.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Output, Stdio};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub struct Emulator {
    child: Child,
    pub url: String,
}

fn emulator_python() -> PathBuf {
    if let Ok(p) = std::env::var("MSKCTL_EMULATOR_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/emulator/bin/python");
    assert!(
        p.exists(),
        "the local AWS emulator is not installed: run scripts/test (or scripts/emulator-setup)"
    );
    p
}

impl Emulator {
    /// Start a fresh emulator on a free port. `env` tunes its lifecycle delays
    /// (e.g. `EMULATOR_MSK_CREATE_SECONDS`).
    pub fn start_with(env: &[(&str, &str)]) -> Emulator {
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emulator/launcher.py");
        let mut cmd = Command::new(emulator_python());
        cmd.arg(launcher)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the emulator");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read emulator output");
        let url = line
            .trim()
            .strip_prefix("EMULATOR_READY ")
            .unwrap_or_else(|| panic!("emulator did not start: {line:?}"))
            .to_string();
        Emulator { child, url }
    }

    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// A `mskctl` command pointed at this emulator, with no ambient AWS configuration.
    pub fn mskctl(&self) -> Command {
        mskctl_at(&self.url)
    }

    /// Run mskctl with `args`, returning its output (stdout+stderr captured).
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.mskctl().args(args).output().expect("run mskctl"))
    }

    /// `mskctl apply -f FILE --auto-approve`, asserting success.
    #[track_caller]
    pub fn apply(&self, file: &str) -> Run {
        self.run(&["apply", "-f", file, "--auto-approve"]).ok()
    }

    /// `mskctl plan -f FILE --detailed-exitcode`, asserting its exit code (0: no changes,
    /// 2: changes).
    #[track_caller]
    pub fn plan_exits(&self, file: &str, code: i32) -> Run {
        self.run(&["plan", "-f", file, "--detailed-exitcode"])
            .code(code)
    }

    /// Run mskctl with `args` and kill it (SIGKILL: no cleanup) as soon as a stdout line
    /// satisfies `at`; returns the lines seen up to then.
    pub fn kill_at(&self, args: &[&str], at: impl Fn(&str) -> bool) -> Vec<String> {
        let mut child = self
            .mskctl()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run mskctl");
        let mut seen = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let stop = at(&line);
            seen.push(line);
            if stop {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        seen
    }

    /// POST a JSON body to the emulator's fault-injection endpoint.
    pub fn control(&self, path: &str, body: &str) {
        let status = Command::new(emulator_python())
            .args([
                "-c",
                "import sys,urllib.request as u; r=u.Request(sys.argv[1], data=sys.argv[2].encode(), headers={'Content-Type':'application/json'}, method='POST'); u.urlopen(r).read()",
                &format!("{}{}", self.url, path),
                body,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "control call {path} failed");
    }

    /// `GET /_emulator/faults`: the faults in force, with each throttle's `remaining` count.
    pub fn faults(&self) -> serde_json::Value {
        let out = Command::new(emulator_python())
            .args([
                "-c",
                "import sys,urllib.request as u; sys.stdout.write(u.urlopen(sys.argv[1]).read().decode())",
                &format!("{}/_emulator/faults", self.url),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "GET /_emulator/faults failed");
        serde_json::from_slice(&out.stdout).expect("the fault snapshot is JSON")
    }

    /// `host:port` of the emulator's local Kafka broker (Tansu, plaintext), the address MSK
    /// GetBootstrapBrokers answers for every cluster (`GET /_emulator/kafka`).
    pub fn kafka_bootstrap(&self) -> String {
        let out = Command::new(emulator_python())
            .args([
                "-c",
                "import json,sys,urllib.request as u; sys.stdout.write(json.load(u.urlopen(sys.argv[1]))['bootstrap'] or '')",
                &format!("{}/_emulator/kafka", self.url),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "GET /_emulator/kafka failed");
        let bootstrap = String::from_utf8(out.stdout).unwrap();
        assert!(
            !bootstrap.is_empty(),
            "the emulator runs no Kafka broker (EMULATOR_KAFKA_BROKER=0?)"
        );
        bootstrap
    }

    /// The emulator URL that serves an HTTP API invoke URL
    /// (`https://ID.execute-api.REGION.amazonaws.com/STAGE` → `EMULATOR/_execute-api/ID/STAGE`),
    /// with `path` (e.g. `/messages`) appended. Requests to it are routed and authorised as API
    /// Gateway does (tests/emulator/README.md, "HTTP API execution").
    pub fn execute_api_url(&self, invoke_url: &str, path: &str) -> String {
        let rest = invoke_url
            .strip_prefix("https://")
            .unwrap_or_else(|| panic!("not an invoke URL: {invoke_url}"));
        let (host, stage_path) = rest.split_once('/').unwrap_or((rest, ""));
        let api_id = host
            .split_once(".execute-api.")
            .unwrap_or_else(|| panic!("not an execute-api host: {invoke_url}"))
            .0;
        let stage_path = stage_path.trim_end_matches('/');
        let mut url = format!("{}/_execute-api/{api_id}", self.url);
        if !stage_path.is_empty() {
            url.push('/');
            url.push_str(stage_path);
        }
        url.push_str(path);
        url
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("ap-northeast-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mskctl` pointed at `url` (any URL: bad-input tests use a socket that records connections).
pub fn mskctl_at(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mskctl"));
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "MSKCTL_FILE",
        "MSKCTL_REGION",
        "MSKCTL_PROFILE",
        "MSKCTL_VAR_FILE",
        "MSKCTL_PARALLELISM",
        "MSKCTL_LOCK_TIMEOUT",
        "MSKCTL_TIMEOUT",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-key-never-printed")
        .env("AWS_REGION", "ap-northeast-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("MSKCTL_POLL_MS", "100")
        .stdin(Stdio::null());
    cmd
}

/// The result of one mskctl run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "mskctl failed:\n{}", self.all());
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code:\n{}", self.all());
        self
    }
}

/// A temporary directory holding a stack file (and anything else a test writes next to it).
pub struct StackDir {
    pub dir: tempfile::TempDir,
}

impl StackDir {
    pub fn new() -> StackDir {
        StackDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Write `stack.yaml` (or another name) and return its path as a string.
    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// Copy the repository's handler to `functions/msk_processor/`, where the example stacks
    /// (and tests' own stacks) package it from.
    pub fn with_handler(&self) {
        let handler =
            std::fs::read_to_string(repo_path("stacks/functions/msk_processor/msk_processor.py"))
                .unwrap();
        self.write("functions/msk_processor/msk_processor.py", &handler);
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The repository's own stacks directory.
pub fn repo_path(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// Run one named step of a scenario test. A panic inside it (a failed assertion) is raised
/// again with the step's name in front, so a failure says which phase of the scenario broke;
/// the original panic, with its file and line, is printed just before.
pub async fn step<T>(name: &str, body: impl Future<Output = T>) -> T {
    eprintln!("--- step: {name}");
    match (CatchUnwind(Box::pin(body))).await {
        Ok(value) => value,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(panic without a message)");
            panic!("step `{name}` failed: {message}");
        }
    }
}

/// Polls a future, turning a panic during a poll into an `Err` with the panic's payload.
struct CatchUnwind<'a, T>(Pin<Box<dyn Future<Output = T> + 'a>>);

impl<T> Future for CatchUnwind<'_, T> {
    type Output = std::thread::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// A mskctl process running in the background, its stdout read line by line as it comes (for
/// tests that race, signal or time it).
pub struct Running {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Start `cmd` (e.g. `em.mskctl().args([...])`) with stdout and stderr captured.
    pub fn spawn(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mskctl");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
            text
        });
        Running {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Wait until a stdout line satisfies `at`; false if the process ended or `timeout` passed.
    pub fn wait_for_line(&mut self, timeout: Duration, at: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = at(&line);
                    self.stdout.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Send `signal` (e.g. `libc::SIGINT`) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: sending a signal to our own child process.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    /// True once the process has exited (without collecting its output).
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Wait for the process to end and collect everything it printed.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv() {
            self.stdout.push(line);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.join("\n"),
            stderr,
        }
    }
}

/// `text` with the line wrapping of error reports undone (continuation lines start with `│`
/// or spaces), so a test can look for a phrase wherever the report broke it.
pub fn flat(text: &str) -> String {
    text.lines()
        .map(|l| l.trim().trim_start_matches('│').trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replace the first `from` in the stack file at `path` with `to`; `from` must be there.
#[track_caller]
pub fn edit(path: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {path}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The Python of one of the project's virtualenvs (`emulator`, `functions`), for checks made
/// independently of mskctl.
pub fn venv_python(venv: &str) -> String {
    let p = repo_path(&format!(".venv/{venv}/bin/python"));
    assert!(
        Path::new(&p).exists(),
        "{p} is missing: run scripts/test (or scripts/emulator-setup and scripts/functions-setup)"
    );
    p
}

/// Run a Python snippet with `venv`'s Python; the last line it prints is one JSON value.
pub fn python_json(venv: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(venv_python(venv))
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim().lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Facts from the Kafka broker at `bootstrap`, asked with kafka-python (from .venv/functions),
/// never through mskctl or the project's handlers. `script` may use `admin()`, `topics()`,
/// `partitions(t)`, `configs(t)`, `set_configs(t, {..})` and `record(t, partition, offset)`,
/// and prints one JSON value. DescribeConfigs and IncrementalAlterConfigs go as raw requests:
/// the local broker lists only the configs given to a topic (marked as defaults), which
/// kafka-python's high-level calls filter out.
pub fn kafka(bootstrap: &str, script: &str) -> serde_json::Value {
    let prelude = r#"
import json, sys
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.protocol.admin import DescribeConfigsRequest, IncrementalAlterConfigsRequest
BOOT = sys.argv[1]
def admin():
    return KafkaAdminClient(bootstrap_servers=BOOT, request_timeout_ms=10000)
def send(req):
    m = admin()._manager
    return m.run(m.send, req)
def topics():
    return sorted(t for t in admin().list_topics() if not t.startswith("__"))
def partitions(topic):
    return len(admin().describe_topics([topic])[0]["partitions"])
def configs(topic):
    r = send(DescribeConfigsRequest(resources=[(2, topic, None)], include_synonyms=False))
    return {c.name: c.value for c in r.results[0].configs}
def set_configs(topic, values):
    ops = [(k, 0, v) for k, v in values.items()]
    r = send(IncrementalAlterConfigsRequest(resources=[(2, topic, ops)], validate_only=False))
    assert r.responses[0].error_code == 0, r
def record(topic, partition, offset):
    c = KafkaConsumer(bootstrap_servers=BOOT, enable_auto_commit=False, consumer_timeout_ms=10000)
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    c.seek(tp, offset)
    for r in c:
        return r.value.decode()
    return None
"#;
    python_json("functions", &format!("{prelude}\n{script}"), &[bootstrap])
}

/// Copy the repository's function directory `stacks/functions/NAME` to `to`, without its
/// tests, as a stack next to it packages it.
pub fn copy_function(name: &str, to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("test_") || name == "__pycache__" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &to.join(&name));
            } else {
                std::fs::copy(entry.path(), to.join(&name)).unwrap();
            }
        }
    }
    copy(
        Path::new(&repo_path(&format!("stacks/functions/{name}"))),
        to,
    );
}
