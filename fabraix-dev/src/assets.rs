//! The page's files, compiled into the binary: it works offline and needs no build step.

use bytes::Bytes;
use fabraix::testing::FallbackResponse;
use http::StatusCode;
use http::header::{CONTENT_SECURITY_POLICY, HeaderValue};

use crate::response::respond;

/// Only the page's own files may load or run; nothing may frame it.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// One of the page's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Page,
    Script,
    Style,
    Icon,
}

impl Asset {
    fn content(self) -> (&'static str, &'static str) {
        match self {
            Asset::Page => ("text/html; charset=utf-8", include_str!("page/index.html")),
            Asset::Script => (
                "text/javascript; charset=utf-8",
                include_str!("page/app.js"),
            ),
            Asset::Style => ("text/css; charset=utf-8", include_str!("page/app.css")),
            Asset::Icon => ("image/svg+xml", include_str!("page/favicon.svg")),
        }
    }

    pub fn response(self) -> FallbackResponse {
        let (content_type, text) = self.content();
        let mut response = respond(
            StatusCode::OK,
            content_type,
            Bytes::from_static(text.as_bytes()),
        );
        response
            .headers_mut()
            .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
        response
    }
}
