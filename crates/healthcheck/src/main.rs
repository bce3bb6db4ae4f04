//! `healthcheck`: the container healthcheck of the demo's images, without a shell or
//! busybox in them.
//!
//! ```text
//! healthcheck                              GET http://127.0.0.1:$PORT/healthz ($PORT: 8080)
//! healthcheck http://127.0.0.1:8081/readyz GET that URL
//! ```
//!
//! Exit 0 when the answer is 2xx within two seconds, 1 otherwise, with the reason on
//! stderr (Docker shows it in `docker inspect`). Only `http://<IP>:<port>/<path>`: a
//! container probes itself on loopback, and without name resolution the binary can be
//! linked statically and run in the collector's image, which holds nothing else.
#![forbid(unsafe_code)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::ExitCode,
    time::Duration,
};

/// Connect, send and receive, each: well under the compose healthchecks' 3 s timeout.
const TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
        format!("http://127.0.0.1:{port}/healthz")
    });
    match probe(&url) {
        Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("healthcheck: {url} answered HTTP {status}");
            ExitCode::FAILURE
        }
        Err(reason) => {
            eprintln!("healthcheck: {url}: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// The address and path of `http://<IP>:<port>/<path>`.
fn parse(url: &str) -> Result<(SocketAddr, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let address = authority
        .parse()
        .map_err(|_| format!("{authority:?} is not <IP>:<port> (names are not resolved)"))?;
    Ok((address, path))
}

/// The status code of `GET url`.
fn probe(url: &str) -> Result<u16, String> {
    let (address, path) = parse(url)?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // The status line is all we need: "HTTP/1.1 200 OK".
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]).map_err(|e| e.to_string())? {
            0 => break,
            n => read += n,
        }
    }
    status_of(&head[..read])
}

fn status_of(head: &[u8]) -> Result<u16, String> {
    let line = String::from_utf8_lossy(head);
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loopback_urls_and_refuses_names() {
        let (address, path) = parse("http://127.0.0.1:13133/").unwrap();
        assert_eq!((address.port(), path), (13133, "/"));
        assert_eq!(parse("http://127.0.0.1:8081").unwrap().1, "/");
        assert_eq!(parse("http://[::1]:8081/readyz").unwrap().1, "/readyz");
        assert!(
            parse("http://localhost:8081/readyz")
                .unwrap_err()
                .contains("not resolved")
        );
        assert!(parse("https://127.0.0.1:8081/").is_err());
    }

    #[test]
    fn reads_the_status_code() {
        assert_eq!(status_of(b"HTTP/1.1 503 Service Unavailable"), Ok(503));
        assert_eq!(status_of(b"HTTP/1.0 200 OK\r\n"), Ok(200));
        assert!(status_of(b"SSH-2.0-OpenSSH").is_err());
        assert!(status_of(b"").is_err());
    }
}
