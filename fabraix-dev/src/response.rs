//! The answers outside `/v1`: every one uncached and never sniffed, JSON or text.

use bytes::Bytes;
use fabraix::testing::FallbackResponse;
use http::StatusCode;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};

pub fn json_ok(value: &Value) -> FallbackResponse {
    respond(
        StatusCode::OK,
        "application/json",
        Bytes::from(value.to_string()),
    )
}

pub fn json_error(status: StatusCode, message: &str) -> FallbackResponse {
    let body = json!({ "error": { "message": message } });
    respond(status, "application/json", Bytes::from(body.to_string()))
}

pub fn text(status: StatusCode, message: &str) -> FallbackResponse {
    respond(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(message.to_owned()),
    )
}

pub fn method_not_allowed(allow: &'static str) -> FallbackResponse {
    let mut response = json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// A response that no cache keeps and no browser sniffs.
pub fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> FallbackResponse {
    let mut response = FallbackResponse::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}
