//! The real binary against a real socket: exit codes a container runtime acts on.

use std::{
    io::{Read, Write},
    net::TcpListener,
    process::Command,
    thread,
};

/// Serves one HTTP answer with `status` on a free loopback port; returns the URL.
fn answer_once(status: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/readyz", listener.local_addr().unwrap());
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 512];
        while !request.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the probe closed before its request was complete");
            request.extend_from_slice(&buf[..n]);
        }
        assert!(request.starts_with(b"GET /readyz HTTP/1.1\r\n"));
        write!(stream, "HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").unwrap();
    });
    url
}

fn healthcheck(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_healthcheck"))
        .args(args)
        .env_remove("PORT")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn healthy_is_exit_0() {
    assert_eq!(healthcheck(&[&answer_once("200 OK")]).0, Some(0));
}

#[test]
fn not_ready_is_exit_1_with_the_status() {
    let (code, stderr) = healthcheck(&[&answer_once("503 Service Unavailable")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("HTTP 503"), "{stderr}");
}

#[test]
fn nothing_listening_is_exit_1_with_the_reason() {
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, stderr) = healthcheck(&[&format!("http://{free}/healthz")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("refused"), "{stderr}");
}
