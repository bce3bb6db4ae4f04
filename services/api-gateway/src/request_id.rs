//! Request ids: every request through the gateway carries exactly one `x-request-id`.
//!
//! A client's id is kept when it is 1 to [`MAX_LEN`] visible ASCII characters; anything
//! else (missing, empty, too long, spaces, control or non-ASCII bytes) is replaced with a
//! UUID v4, so logs and span attributes never carry attacker-shaped junk. The id goes
//! upstream with the request and back to the client on the response.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

/// The header name.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest id accepted from a client.
pub const MAX_LEN: usize = 128;

/// True when a client's id can be kept.
pub fn is_acceptable(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(u8::is_ascii_graphic)
}

/// Middleware: keeps or replaces the request's id and copies it onto the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let name = HeaderName::from_static(REQUEST_ID);
    let id = request
        .headers()
        .get(&name)
        .filter(|v| is_acceptable(v.as_bytes()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value")
        });
    // `insert` also drops any further copies a client sent.
    request.headers_mut().insert(name.clone(), id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(name, id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_is_kept() {
        assert!(is_acceptable(b"req-1"));
        assert!(is_acceptable(&[b'a'; MAX_LEN]));
        assert!(!is_acceptable(&[b'a'; MAX_LEN + 1]));
        assert!(!is_acceptable(b""));
        assert!(!is_acceptable(b"has space"));
        assert!(!is_acceptable(b"tab\there"));
        assert!(!is_acceptable("caf\u{e9}".as_bytes()));
    }
}
