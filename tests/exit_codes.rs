//! An endpoint that accepts connections and never answers fails the run in bounded time, with a
//! message naming the endpoint and the operation.

mod common;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{Run, StackDir, flat, mskctl_at};

const VPC_ONLY: &str = "stack: codes\nregion: ap-northeast-1\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.30.0.0/16\n";

/// A socket that accepts TCP connections and never answers (a black-holed proxy, a hung
/// endpoint). Connections are held open until the test ends.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    url
}

#[test]
fn a_silent_endpoint_fails_within_40s_naming_endpoint_and_operation() {
    let url = black_hole();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", VPC_ONLY);
    let started = Instant::now();
    let out = Run::from(
        mskctl_at(&url)
            .args(["plan", "-f", &file])
            .output()
            .unwrap(),
    );
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        took < Duration::from_secs(40),
        "took {took:?}:\n{}",
        out.all()
    );
    let message = flat(&out.stderr);
    assert!(
        message.contains(&format!(
            "no answer from {url} within 30s (sts:GetCallerIdentity)"
        )),
        "the error must name the endpoint and the operation:\n{}",
        out.all()
    );
    assert!(
        !message.contains("credentials"),
        "a silent endpoint is not a credentials problem:\n{}",
        out.all()
    );
    eprintln!("black-hole endpoint: mskctl plan failed after {took:?}");
}
