//! A Python function whose directory holds `requirements.txt`, end to end: the first plan
//! installs the requirements with pip (counted through a wrapper `MSKCTL_PYTHON`), a second
//! plan and the apply reuse the cached package without running pip or printing anything new,
//! the deployed function imports the installed module (the emulator runs the package), an
//! unchanged stack plans as no change, and a code change builds again. Bad requirements and
//! a non-Python runtime fail before any AWS call, naming the stack file's `code:` line.
//!
//! The requirement is a wheel the test writes into a local directory (`--no-index
//! --find-links`), so no test needs the network.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use base64::prelude::*;
use common::{Emulator, Run, StackDir, mskctl_at, step};
use sha2::{Digest, Sha256};

const STACK: &str = r#"
stack: pkg
region: ap-northeast-1
resources:
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
  fn:
    type: lambda_function
    code: functions/with_deps
    handler: handler.handler
    runtime: python3.12
    role: role
"#;

/// A pure-Python wheel of `tinydep` 1.0 (module `tinydep` with `VALUE = 42`) in `dir`.
fn write_wheel(dir: &Path) {
    let files = [
        ("tinydep/__init__.py", "VALUE = 42\n"),
        (
            "tinydep-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        ),
        (
            "tinydep-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: mskctl-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ];
    let file = std::fs::File::create(dir.join("tinydep-1.0-py3-none-any.whl")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    let mut record = String::new();
    for (name, content) in files {
        zip.start_file(name, options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
        let digest = BASE64_URL_SAFE_NO_PAD.encode(Sha256::digest(content.as_bytes()));
        record.push_str(&format!("{name},sha256={digest},{}\n", content.len()));
    }
    record.push_str("tinydep-1.0.dist-info/RECORD,,\n");
    zip.start_file("tinydep-1.0.dist-info/RECORD", options)
        .unwrap();
    zip.write_all(record.as_bytes()).unwrap();
    zip.finish().unwrap();
}

/// The stack, the function directory (handler + requirements.txt pinning tinydep from a local
/// wheel directory), a cache directory and a `python3` wrapper counting its runs.
struct Setup {
    dir: StackDir,
    file: String,
    cache: tempfile::TempDir,
    wheels: tempfile::TempDir,
    python: PathBuf,
    runs: PathBuf,
}

impl Setup {
    fn new(stack: &str, requirement: &str) -> Setup {
        let dir = StackDir::new();
        let wheels = tempfile::tempdir().unwrap();
        write_wheel(wheels.path());
        dir.write(
            "functions/with_deps/handler.py",
            "import tinydep\n\n\ndef handler(event, context):\n    return {\"value\": tinydep.VALUE}\n",
        );
        dir.write(
            "functions/with_deps/requirements.txt",
            &format!(
                "--no-index\n--find-links {}\n{requirement}\n",
                wheels.path().display()
            ),
        );
        let file = dir.write("stack.yaml", stack);
        let bin = dir.path("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let runs = PathBuf::from(dir.path("bin/runs"));
        let python = PathBuf::from(dir.path("bin/python3"));
        std::fs::write(
            &python,
            format!(
                "#!/bin/sh\necho run >> '{}'\nexec python3 \"$@\"\n",
                runs.display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Setup {
            dir,
            file,
            cache: tempfile::tempdir().unwrap(),
            wheels,
            python,
            runs,
        }
    }

    /// How many times pip was started.
    fn pip_runs(&self) -> usize {
        std::fs::read_to_string(&self.runs).map_or(0, |s| s.lines().count())
    }

    fn env(&self, cmd: &mut std::process::Command) {
        cmd.env("MSKCTL_CACHE_DIR", self.cache.path())
            .env("MSKCTL_PYTHON", &self.python);
    }

    fn run(&self, em: &Emulator, args: &[&str]) -> Run {
        let mut cmd = em.mskctl();
        self.env(&mut cmd);
        Run::from(cmd.args(args).output().unwrap())
    }

    #[track_caller]
    fn plan(&self, em: &Emulator, code: i32) -> Run {
        self.run(em, &["plan", "-f", &self.file, "--detailed-exitcode"])
            .code(code)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requirements_are_installed_once_and_the_cached_package_is_deployed() {
    let em = Emulator::start();
    let s = Setup::new(STACK, "tinydep==1.0");
    let lambda = aws_sdk_lambda::Client::new(&em.sdk().await);

    let first = step("the first plan installs the requirements with pip", async {
        let plan = s.plan(&em, 2);
        assert_eq!(s.pip_runs(), 1, "{}", plan.all());
        assert!(
            plan.stderr
                .contains("fn.code: installing requirements.txt with pip for python3.12 on x86_64")
                && plan.stderr.contains("fn.code: packaged "),
            "{}",
            plan.all()
        );
        plan
    })
    .await;

    step(
        "a second plan and the apply reuse the package: no pip, nothing new printed",
        async {
            let second = s.plan(&em, 2);
            assert_eq!(s.pip_runs(), 1, "{}", second.all());
            assert!(!second.stderr.contains("fn.code:"), "{}", second.all());
            assert_eq!(second.stdout, first.stdout);
            let apply = s.run(&em, &["apply", "-f", &s.file, "--auto-approve"]).ok();
            assert_eq!(s.pip_runs(), 1, "{}", apply.all());
            assert!(!apply.stderr.contains("fn.code:"), "{}", apply.all());
            s.plan(&em, 0);
            assert_eq!(s.pip_runs(), 1);
        },
    )
    .await;

    step(
        "the deployed function imports the installed module from its package",
        async {
            let out = lambda
                .invoke()
                .function_name("pkg-fn")
                .send()
                .await
                .unwrap();
            assert_eq!(out.function_error(), None, "{out:?}");
            let body = String::from_utf8_lossy(out.payload().unwrap().as_ref()).into_owned();
            assert_eq!(body.replace(' ', ""), "{\"value\":42}");
        },
    )
    .await;

    step("new code builds the package again", async {
        common::edit(
            &s.dir.path("functions/with_deps/handler.py"),
            "tinydep.VALUE}",
            "tinydep.VALUE + 1}",
        );
        let plan = s.plan(&em, 2);
        assert_eq!(s.pip_runs(), 2, "{}", plan.all());
        assert!(plan.stdout.contains("code"), "{}", plan.all());
    })
    .await;
    drop(s.wheels);
}

/// Run `mskctl plan` with a dead endpoint: (exit code, stderr, whether it connected).
fn plan_offline(s: &Setup) -> (i32, String, bool) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut cmd = mskctl_at(&url);
    s.env(&mut cmd);
    let out = cmd.args(["plan", "-f", &s.file]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().unwrap_or(-1),
        stderr,
        listener.accept().is_ok(),
    )
}

#[test]
fn a_requirement_pip_cannot_install_fails_at_the_code_line_before_aws() {
    let s = Setup::new(STACK, "tinydep==2.0");
    let (code, stderr, connected) = plan_offline(&s);
    assert_eq!(code, 1, "{stderr}");
    assert!(!connected, "mskctl reached AWS:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // `code:` is on line 10, column 5 of STACK.
    let headline = format!(
        "{}:10:5: fn: pip could not install requirements.txt",
        s.file
    );
    assert!(stderr.contains(&headline), "{headline:?} not in:\n{stderr}");
    assert!(
        stderr.contains("No matching distribution found for tinydep==2.0"),
        "{stderr}"
    );
    assert_eq!(s.pip_runs(), 1);
    // Nothing cached: the next run tries again.
    let (code, _, _) = plan_offline(&s);
    assert_eq!((code, s.pip_runs()), (1, 2));
}

#[test]
fn requirements_with_a_non_python_runtime_fail_before_aws() {
    let s = Setup::new(
        &STACK.replace("runtime: python3.12", "runtime: nodejs20.x"),
        "tinydep==1.0",
    );
    let (code, stderr, connected) = plan_offline(&s);
    assert_eq!(code, 1, "{stderr}");
    assert!(!connected, "mskctl reached AWS:\n{stderr}");
    let headline = format!("{}:10:5: fn: ", s.file);
    assert!(
        stderr.contains(&headline)
            && stderr.contains("only for a Python runtime")
            && stderr.contains("`nodejs20.x`"),
        "{stderr}"
    );
    assert_eq!(s.pip_runs(), 0);
}
