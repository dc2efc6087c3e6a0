//! With the `otlp` feature: the real binary exports each run's span over OTLP/HTTP to a
//! receiver in this test, under the trace id the API shows for the run.
#![cfg(feature = "otlp")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// Accepts OTLP/HTTP posts and hands each (path, body) over.
fn receiver() -> (u16, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                while let Some((path, body)) = read_request(&mut s) {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    );
                    if tx.send((path, body)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

/// One HTTP/1.1 request with a content-length body; None at end of stream.
fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))?
        .ok()?;
    let mut body = vec![0; len];
    s.read_exact(&mut body).ok()?;
    Some((path, body))
}

/// A plain HTTP/1.1 exchange; returns the status and body.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_runs_span_is_exported_under_the_runs_trace_id() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_scheduler"));
    let noop = bin.with_file_name("libnoop.so");
    assert!(noop.exists(), "{} missing: build the workspace first (cargo build --workspace)", noop.display());
    let plugins = tempfile_dir();
    std::fs::copy(&noop, plugins.join("libnoop.so")).unwrap();
    let (otlp_port, posts) = receiver();
    let port = free_port();
    let _service = Service(
        Command::new(&bin)
            .args(["--bind", &format!("127.0.0.1:{port}"), "--plugins"])
            .arg(&plugins)
            .args(["--otlp-endpoint", &format!("http://127.0.0.1:{otlp_port}")])
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let began = Instant::now();
    while http_ok(port, "/ready").is_none() {
        assert!(began.elapsed() < DEADLINE, "the service did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, created) =
        http(port, "POST", "/api/scheduler/bench/noop/jobs", Some(r#"{"when":"2000-01-01T00:00:00Z"}"#));
    assert_eq!(status, 201, "{created}");
    let id = json_field(&created, "id").expect("job id");
    let trace_id = loop {
        let (_, runs) = http(port, "GET", &format!("/api/scheduler/bench/noop/jobs/{id}/runs"), None);
        if runs.contains("\"succeeded\"") {
            break json_field(&runs, "traceId").expect("trace id");
        }
        assert!(began.elapsed() < DEADLINE, "the run did not succeed: {runs}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let wanted: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap()).collect();
    loop {
        let left = DEADLINE.saturating_sub(began.elapsed());
        let (path, body) = posts.recv_timeout(left).expect("no OTLP export carried the run's trace id");
        assert_eq!(path, "/v1/traces");
        if contains(&body, &wanted) && contains(&body, b"run") {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&plugins);
}

fn http_ok(port: u16, path: &str) -> Option<()> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    drop(s);
    (http(port, "GET", path, None).0 == 200).then_some(())
}

fn json_field(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\":\""))? + key.len() + 4;
    Some(text[at..].split('"').next()?.to_owned())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scheduler-otlp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
