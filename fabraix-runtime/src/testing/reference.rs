//! The API reference a MockServer serves beside the API: the OpenAPI document at
//! `/openapi.json`, and a page rendered from it at `/docs` (for agents in any language, and
//! the people writing them).

use serde_json::{Value, json};

/// The OpenAPI 3.1 document of the three endpoints: fields, formats, errors, rate limits and
/// examples, from Fabraix's public API reference. A [`MockServer`](super::MockServer)
/// serves it at `/openapi.json` (with its own URL first among the servers) and as a page
/// at `/docs`; what it calls valid is what the MockServer accepts.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// The document as served by the server at `base_url`: the text as written (its order
/// kept), with the server's own URL first among the servers.
pub(super) fn served_document(base_url: &str) -> String {
    let this_server = json!({
        "url": base_url,
        "description": "The server that served this document (a MockServer), with the same \
                        validation and answers.",
    });
    OPENAPI_JSON.replacen(
        "\"servers\": [",
        &format!("\"servers\": [\n    {this_server},"),
        1,
    )
}

/// The endpoints in the order a run uses them; any other after them.
const RUN_ORDER: [&str; 3] = ["/register-agent-run", "/event", "/check"];

/// The document as a self-contained page: no script, and nothing loaded from elsewhere.
pub(super) fn page(document: &Value) -> String {
    let mut page = Page::new(document);
    page.render();
    page.html
}

/// Only the page's inline style; nothing may load, run or frame it.
pub(super) const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;\
padding:0 1rem;color:#1d2330}code,pre{font:13px/1.45 ui-monospace,monospace}\
pre{background:#f3f4f7;padding:.6rem .8rem;overflow-x:auto;border-radius:4px}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}\
th,td{text-align:left;vertical-align:top;border-bottom:1px solid #dde0e6;padding:.35rem .5rem}\
h2{margin-top:2.5rem;border-top:2px solid #1d2330;padding-top:.6rem}\
.method{background:#1d2330;color:#fff;padding:0 .4rem;border-radius:3px}.status{font-weight:600}";

struct Page<'a> {
    document: &'a Value,
    html: String,
}

impl<'a> Page<'a> {
    fn new(document: &'a Value) -> Self {
        Self {
            document,
            html: String::new(),
        }
    }

    fn render(&mut self) {
        let info = &self.document["info"];
        let title = format!(
            "{} {}",
            text(&info["title"]).unwrap_or("API"),
            text(&info["version"]).unwrap_or("")
        );
        self.push(&format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{0}</title><style>{STYLE}</style></head><body><h1>{0}</h1>",
            escape(title.trim())
        ));
        self.paragraphs(text(&info["summary"]).unwrap_or(""));
        self.push(
            "<p>This page is rendered from the OpenAPI document at \
                   <a href=\"/openapi.json\"><code>/openapi.json</code></a>.</p>",
        );
        self.paragraphs(text(&info["description"]).unwrap_or(""));
        self.servers();
        self.authentication();
        let document = self.document;
        if let Some(paths) = document["paths"].as_object() {
            let mut paths: Vec<(&String, &Value)> = paths.iter().collect();
            paths.sort_by_key(|(path, _)| {
                RUN_ORDER
                    .iter()
                    .position(|known| known == path)
                    .unwrap_or(RUN_ORDER.len())
            });
            for (path, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                for (method, operation) in item {
                    self.operation(path, method, operation);
                }
            }
        }
        self.push("<h2 id=\"errors\">Errors</h2>");
        self.schema_table(&json!({ "$ref": "#/components/schemas/Error" }));
        self.push("</body></html>\n");
    }

    fn push(&mut self, html: &str) {
        self.html.push_str(html);
    }

    fn servers(&mut self) {
        let Some(servers) = self.document["servers"].as_array() else {
            return;
        };
        self.push("<h2 id=\"servers\">Base URLs</h2><ul>");
        for server in servers {
            let url = text(&server["url"]).unwrap_or("");
            let description = inline(text(&server["description"]).unwrap_or(""));
            self.push(&format!(
                "<li><code>{}</code>: {description}</li>",
                escape(url)
            ));
        }
        self.push("</ul>");
    }

    fn authentication(&mut self) {
        let Some(schemes) = self.document["components"]["securitySchemes"].as_object() else {
            return;
        };
        self.push("<h2 id=\"authentication\">Authentication</h2>");
        for scheme in schemes.values() {
            let header = text(&scheme["name"]).unwrap_or("");
            self.push(&format!(
                "<p>Every request sends the header <code>{}: &lt;key&gt;</code>. {}</p>",
                escape(header),
                inline(text(&scheme["description"]).unwrap_or(""))
            ));
        }
    }

    fn operation(&mut self, path: &str, method: &str, operation: &'a Value) {
        let verb = method.to_ascii_uppercase();
        self.push(&format!(
            "<h2 id=\"{}\"><span class=\"method\">{}</span> <code>{}</code></h2>",
            escape(text(&operation["operationId"]).unwrap_or(path)),
            escape(&verb),
            escape(path)
        ));
        if let Some(summary) = text(&operation["summary"]) {
            self.push(&format!("<p><strong>{}</strong></p>", inline(summary)));
        }
        self.paragraphs(text(&operation["description"]).unwrap_or(""));
        let body = &operation["requestBody"]["content"]["application/json"];
        self.push("<h3>Request body (<code>application/json</code>)</h3>");
        self.schema_table(&body["schema"]);
        if let Some(examples) = body["examples"].as_object() {
            for (name, example) in examples {
                let heading = text(&example["summary"]).unwrap_or(name);
                self.push(&format!("<h4>Example: {}</h4>", inline(heading)));
                self.push(&format!(
                    "<pre>{}</pre>",
                    escape(&curl(path, &example["value"]))
                ));
            }
        }
        self.push("<h3>Responses</h3>");
        if let Some(responses) = operation["responses"].as_object() {
            for (status, response) in responses {
                let response = self.resolve(response);
                self.push(&format!(
                    "<p><span class=\"status\">{}</span> {}</p>",
                    escape(status),
                    inline(text(&response["description"]).unwrap_or(""))
                ));
                if response["headers"]["Retry-After"].is_object() {
                    self.push(
                        "<p>With the header <code>Retry-After</code>: seconds, or an \
                               HTTP date.</p>",
                    );
                }
                let content = &response["content"]["application/json"];
                if status.starts_with('2') {
                    self.schema_table(&content["schema"]);
                }
                if let Some(examples) = content["examples"].as_object() {
                    for example in examples.values() {
                        self.push(&format!(
                            "<pre>{}</pre>",
                            escape(&pretty(&example["value"]))
                        ));
                    }
                }
            }
        }
    }

    /// The fields of an object schema, a row each (with the fields of nested objects).
    fn schema_table(&mut self, schema: &Value) {
        let mut rows = Vec::new();
        self.fields(schema, "", &mut rows);
        if rows.is_empty() {
            return;
        }
        self.push(
            "<table><thead><tr><th>field</th><th>type</th><th>required</th>\
                   <th>meaning</th></tr></thead><tbody>",
        );
        for row in rows {
            self.push(&row);
        }
        self.push("</tbody></table>");
    }

    fn fields(&self, schema: &Value, prefix: &str, rows: &mut Vec<String>) {
        let schema = self.resolve(schema);
        let Some(properties) = schema["properties"].as_object() else {
            return;
        };
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Required fields in the order the schema lists them, then the others.
        let mut properties: Vec<(&String, &Value)> = properties.iter().collect();
        properties.sort_by_key(|(name, _)| {
            required
                .iter()
                .position(|known| known == name)
                .unwrap_or(required.len())
        });
        for (name, field) in properties {
            let full = format!("{prefix}{name}");
            let (kind, meaning) = self.describe(field);
            rows.push(format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&full),
                kind,
                if required.contains(&name.as_str()) {
                    "yes"
                } else {
                    "no"
                },
                meaning
            ));
            self.fields(field, &format!("{full}."), rows);
        }
    }

    /// A field's type (with its form and limits) and its meaning, as HTML.
    fn describe(&self, field: &Value) -> (String, String) {
        let mut meaning = text(&field["description"]).map(inline);
        let mut field = field.clone();
        // A reference's own target, with the field's description kept over the target's.
        while let Some(target) = field.get("$ref").and_then(Value::as_str) {
            let resolved = self.lookup(target).clone();
            if meaning.is_none() {
                meaning = text(&resolved["description"]).map(inline);
            }
            field = resolved;
        }
        let mut kind = match &field["type"] {
            Value::String(kind) => kind.clone(),
            Value::Array(kinds) => kinds
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" or "),
            _ if field.get("const").is_some() => "string".to_owned(),
            _ => "any".to_owned(),
        };
        let mut notes = Vec::new();
        if let Some(value) = field.get("const") {
            notes.push(format!(
                "always <code>{}</code>",
                escape(&value.to_string())
            ));
        }
        if let Some(values) = field["enum"].as_array() {
            let values: Vec<String> = values
                .iter()
                .map(|v| format!("<code>{}</code>", escape(v.as_str().unwrap_or_default())))
                .collect();
            notes.push(format!("one of {}", values.join(", ")));
        }
        if let Some(format) = text(&field["format"]) {
            notes.push(format!("format <code>{}</code>", escape(format)));
        }
        if let Some(pattern) = text(&field["pattern"]) {
            notes.push(format!("matching <code>{}</code>", escape(pattern)));
        }
        if let Some(minimum) = field.get("exclusiveMinimum") {
            notes.push(format!("over {}", escape(&minimum.to_string())));
        }
        if text(&field["contentMediaType"]) == Some("application/json") {
            kind = "string holding JSON".to_owned();
            if let Some(target) = field["contentSchema"]["$ref"].as_str() {
                let name = target.rsplit('/').next().unwrap_or(target);
                notes.push(format!("a {} document", escape(name)));
            }
        }
        let kind = if notes.is_empty() {
            escape(&kind)
        } else {
            format!("{}<br>{}", escape(&kind), notes.join("; "))
        };
        (kind, meaning.unwrap_or_default())
    }

    /// `value`, or what its `$ref` points at.
    fn resolve(&self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(target) => self.lookup(target),
            None => value,
        }
    }

    fn lookup(&self, target: &str) -> &'a Value {
        let mut node = self.document;
        for part in target.trim_start_matches("#/").split('/') {
            node = &node[part];
        }
        node
    }

    /// Paragraphs and `- ` lists of a description.
    fn paragraphs(&mut self, description: &str) {
        for block in description.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let mut lines = block.lines().peekable();
            let mut html = String::new();
            while let Some(line) = lines.next() {
                if let Some(item) = line.strip_prefix("- ") {
                    html.push_str("<ul>");
                    html.push_str(&format!("<li>{}</li>", inline(item)));
                    while let Some(item) = lines.peek().and_then(|l| l.strip_prefix("- ")) {
                        html.push_str(&format!("<li>{}</li>", inline(item)));
                        lines.next();
                    }
                    html.push_str("</ul>");
                } else {
                    html.push_str(&format!("<p>{}</p>", inline(line)));
                }
            }
            self.push(&html);
        }
    }
}

fn text(value: &Value) -> Option<&str> {
    value.as_str()
}

/// Escaped text with its `code` spans.
fn inline(text: &str) -> String {
    let mut html = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            html.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            html.push_str(&escape(part));
        }
    }
    html
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The example as a curl command against the first base URL's stand-in.
fn curl(path: &str, body: &Value) -> String {
    let body = pretty(body).replace('\'', "'\\''");
    format!(
        "curl -X POST \"$FABRAIX_BASE_URL{path}\" \\\n  -H \"x-api-key: $FABRAIX_API_KEY\" \\\n  \
         -H 'Content-Type: application/json' \\\n  -d '{body}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_and_the_page_shows_every_endpoint_and_field() {
        let document: Value = serde_json::from_str(&served_document("http://127.0.0.1:1/v1"))
            .expect("the served document is JSON");
        assert_eq!(document["servers"][0]["url"], "http://127.0.0.1:1/v1");
        assert_eq!(document["servers"].as_array().map(Vec::len), Some(4));
        let html = page(&document);
        for needle in [
            "<code>/register-agent-run</code>",
            "<code>/event</code>",
            "<code>/check</code>",
            "<code>agent_id</code>",
            "<code>system_prompt</code>",
            "<code>event_type</code>",
            "<code>content</code>",
            "<code>schema</code>",
            "<code>is_safe</code>",
            "<code>action_check_id</code>",
            "<code>error.code</code>",
            "x-api-key",
            "Retry-After",
            "curl -X POST",
        ] {
            assert!(html.contains(needle), "the page lacks {needle}");
        }
        assert!(!html.contains("<script"), "the page runs nothing");
    }

    #[test]
    fn text_from_the_document_is_escaped() {
        assert_eq!(inline("a `<b>` & c"), "a <code>&lt;b&gt;</code> &amp; c");
        let mut page = Page::new(&Value::Null);
        page.paragraphs("one\n- two <i>\n- three\n\nfour");
        assert_eq!(
            page.html,
            "<p>one</p><ul><li>two &lt;i&gt;</li><li>three</li></ul><p>four</p>"
        );
    }
}
