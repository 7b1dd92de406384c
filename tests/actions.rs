//! `#[fabraix::action]`: a guarded tool runs only on an approving verdict, and the server
//! sees exactly the fn's name, doc comment, parameter schema and argument values.

use std::sync::atomic::{AtomicUsize, Ordering};

use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{Client, Error, Event};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug)]
enum ToolError {
    Fabraix(Error),
    Declined(String),
}

impl From<Error> for ToolError {
    fn from(error: Error) -> Self {
        ToolError::Fabraix(error)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct Account {
    id: String,
    region: Option<String>,
}

static TRANSFERS: AtomicUsize = AtomicUsize::new(0);

/// Move money between two accounts.
///
/// Amounts are in cents.
#[fabraix::action]
async fn transfer_funds(to: Account, amount_cents: u64) -> Result<String, ToolError> {
    TRANSFERS.fetch_add(1, Ordering::SeqCst);
    if amount_cents == 0 {
        return Err(ToolError::Declined("nothing to move".into()));
    }
    Ok(format!("moved {amount_cents} to {}", to.id))
}

fn json_field(request: &RecordedRequest, field: &str) -> Value {
    serde_json::from_str(request.body[field].as_str().unwrap()).unwrap()
}

/// Runs `f` inside a run registered through `client`.
async fn in_run<T>(client: &Client, f: impl std::future::Future<Output = T>) -> T {
    let trace = client
        .register_agent_run(
            fabraix::AgentId::from_name("tools").unwrap(),
            "You use tools.",
        )
        .await
        .unwrap();
    let out = fabraix::scope(trace, f).await;
    assert!(client.flush(std::time::Duration::from_secs(10)).await);
    out
}

fn account() -> Account {
    Account {
        id: "acct-9".into(),
        region: None,
    }
}

#[tokio::test]
async fn the_server_sees_the_fns_name_doc_schema_and_arguments() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let before = TRANSFERS.load(Ordering::SeqCst);
    let out = in_run(&client, transfer_funds(account(), 1250)).await;
    assert_eq!(out.unwrap(), "moved 1250 to acct-9");
    assert!(TRANSFERS.load(Ordering::SeqCst) > before);

    let check = &server.requests_to(Endpoint::Check)[0];
    assert_eq!(
        json_field(check, "content"),
        json!({ "to": { "id": "acct-9", "region": null }, "amount_cents": 1250 })
    );
    let schema = json_field(check, "schema");
    assert_eq!(schema["type"], "function");
    assert_eq!(schema["name"], "transfer_funds");
    assert_eq!(
        schema["description"],
        "Move money between two accounts.\n\nAmounts are in cents."
    );
    let parameters = &schema["parameters"];
    assert_eq!(parameters["type"], "object");
    assert_eq!(parameters["required"], json!(["to", "amount_cents"]));
    assert_eq!(parameters["properties"]["amount_cents"]["type"], "integer");
    assert_eq!(parameters["properties"]["amount_cents"]["minimum"], 0);
    let to = &parameters["properties"]["to"];
    assert_eq!(to["type"], "object");
    assert_eq!(to["properties"]["id"]["type"], "string");
    assert_eq!(to["required"], json!(["id"]));
}

#[tokio::test]
async fn an_allowed_call_runs_and_is_logged_as_a_tool_event() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let ok = in_run(&client, transfer_funds(account(), 5)).await;
    assert!(ok.is_ok());
    let declined = in_run(&client, transfer_funds(account(), 0)).await;
    assert!(matches!(declined, Err(ToolError::Declined(why)) if why == "nothing to move"));

    let checks = server.requests_to(Endpoint::Check);
    let events = server.requests_to(Endpoint::Event);
    assert_eq!(events.len(), 2);
    for (event, (check, succeeded)) in events.iter().zip(checks.iter().zip([true, false])) {
        assert_eq!(event.body["event_type"], "tool");
        let content = json_field(event, "content");
        assert_eq!(content["action"], "transfer_funds");
        assert_eq!(content["succeeded"], succeeded);
        assert_eq!(content["arguments"], json_field(check, "content"));
        assert!(
            content["action_check_id"]
                .as_str()
                .unwrap()
                .starts_with("chk_")
        );
        assert_eq!(event.body["trace_id"], check.body["trace_id"]);
    }
}

#[tokio::test]
async fn a_blocked_call_never_runs_its_body_and_returns_the_reasoning() {
    static RAN: AtomicUsize = AtomicUsize::new(0);

    /// Delete every record of a table.
    #[fabraix::action]
    async fn delete_records(table: String) -> Result<(), ToolError> {
        RAN.fetch_add(1, Ordering::SeqCst);
        let _ = table;
        Ok(())
    }

    let server = MockServer::start().await.unwrap();
    server.block_action("delete_records", "Destroying data is never allowed.");
    let client = server.client();
    let out = in_run(&client, delete_records("customers".into())).await;
    match out {
        Err(ToolError::Fabraix(Error::Blocked {
            reasoning,
            action_check_id,
        })) => {
            assert_eq!(reasoning, "Destroying data is never allowed.");
            assert!(action_check_id.starts_with("chk_"));
        }
        other => panic!("expected a blocked call, got {other:?}"),
    }
    assert_eq!(RAN.load(Ordering::SeqCst), 0);
    // A refused call is not recorded as a tool call.
    assert!(server.requests_to(Endpoint::Event).is_empty());
}

#[tokio::test]
async fn outside_a_run_the_body_never_runs() {
    static RAN: AtomicUsize = AtomicUsize::new(0);

    #[fabraix::action]
    fn ping(host: String) -> Result<(), Error> {
        RAN.fetch_add(1, Ordering::SeqCst);
        let _ = host;
        Ok(())
    }

    assert!(matches!(ping("example".into()), Err(Error::NoTrace)));
    assert_eq!(RAN.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn with_the_server_down_the_body_never_runs() {
    static RAN: AtomicUsize = AtomicUsize::new(0);

    #[fabraix::action]
    async fn send_email(to: String) -> Result<(), Error> {
        RAN.fetch_add(1, Ordering::SeqCst);
        let _ = to;
        Ok(())
    }

    let server = MockServer::start().await.unwrap();
    let client = server.client_builder().max_retries(1).build().unwrap();
    let trace = client
        .register_agent_run(fabraix::AgentId::from_name("down").unwrap(), "p")
        .await
        .unwrap();
    server.pause().unwrap();
    let out = fabraix::scope(trace, send_email("a@example.com".into())).await;
    assert!(matches!(out, Err(Error::Transport { .. })), "{out:?}");
    assert_eq!(RAN.load(Ordering::SeqCst), 0);
}

struct Mailbox {
    owner: String,
    sent: Vec<String>,
}

impl Mailbox {
    /// Send a message from this mailbox.
    #[fabraix::action(skip(signature))]
    fn send(
        &mut self,
        to: &str,
        body: &str,
        signature: &std::sync::Mutex<u8>,
    ) -> Result<usize, Error> {
        let _ = signature;
        self.sent.push(format!("{to}: {body}"));
        Ok(self.sent.len())
    }

    /// The message at `index`, to edit in place.
    #[fabraix::action]
    fn message_mut(&mut self, index: u32) -> Result<&mut String, Error> {
        self.sent
            .get_mut(index as usize)
            .ok_or_else(|| Error::Encode {
                what: "an index",
                message: "no such message".into(),
            })
    }

    #[fabraix::action(name = "mailbox_owner", description = "Who owns the mailbox.")]
    async fn owner(&self) -> Result<&str, Error> {
        Ok(&self.owner)
    }
}

#[tokio::test]
async fn receivers_and_skipped_arguments_never_reach_the_wire() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let trace = client
        .register_agent_run(fabraix::AgentId::from_name("mail").unwrap(), "p")
        .await
        .unwrap();
    let mut mailbox = Mailbox {
        owner: "secret-owner-name".into(),
        sent: Vec::new(),
    };
    let lock = std::sync::Mutex::new(7);
    let sent = fabraix::sync_scope(trace, || mailbox.send("bob", "hi", &lock));
    assert_eq!(sent.unwrap(), 1);
    // A sync action can hand back a borrow taken through `&mut self`.
    fabraix::sync_scope(trace, || {
        mailbox.message_mut(0).map(|m| m.push('!')).unwrap()
    });
    assert_eq!(mailbox.sent[0], "bob: hi!");
    let owner = fabraix::scope(trace, mailbox.owner()).await.unwrap();
    assert_eq!(owner, "secret-owner-name");

    let checks: Vec<_> = server
        .requests_to(Endpoint::Check)
        .into_iter()
        .filter(|c| json_field(c, "schema")["name"] != "message_mut")
        .collect();
    assert_eq!(checks.len(), 2);
    assert_eq!(
        json_field(&checks[0], "content"),
        json!({ "to": "bob", "body": "hi" })
    );
    let schema = json_field(&checks[0], "schema");
    assert_eq!(schema["name"], "send");
    assert_eq!(schema["description"], "Send a message from this mailbox.");
    assert_eq!(schema["parameters"]["required"], json!(["to", "body"]));

    assert_eq!(json_field(&checks[1], "content"), json!({}));
    let schema = json_field(&checks[1], "schema");
    assert_eq!(schema["name"], "mailbox_owner");
    assert_eq!(schema["description"], "Who owns the mailbox.");
    for check in &checks {
        assert!(!check.raw_body.contains("secret-owner-name"));
        assert!(!check.raw_body.contains("signature"));
    }
}

#[derive(Serialize, schemars::JsonSchema)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

#[fabraix::action]
async fn plant<T: Serialize + schemars::JsonSchema + Send>(
    seed: T,
    tree: Tree,
) -> Result<(), Error> {
    let _ = (serde_json::to_string(&seed), tree.label);
    Ok(())
}

#[tokio::test]
async fn generic_and_recursive_arguments_are_described() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let tree = Tree {
        label: "root".into(),
        children: vec![Tree {
            label: "leaf".into(),
            children: vec![],
        }],
    };
    in_run(&client, plant(vec![1u8, 2], tree)).await.unwrap();
    let check = &server.requests_to(Endpoint::Check)[0];
    let schema = json_field(check, "schema");
    let parameters = &schema["parameters"];
    assert_eq!(parameters["properties"]["seed"]["type"], "array");
    // A recursive type cannot be inlined all the way down: its definition sits under the
    // parameters, and the reference resolves from the root of the function schema.
    let reference = parameters["properties"]["tree"]["properties"]["children"]["items"]["$ref"]
        .as_str()
        .expect("a $ref where the type recurses");
    assert_eq!(reference, "#/parameters/$defs/Tree");
    assert!(parameters["$defs"]["Tree"]["properties"]["children"].is_object());
    assert_eq!(
        json_field(check, "content")["tree"]["children"][0]["label"],
        "leaf"
    );
}

#[tokio::test]
async fn the_tool_event_is_an_event_like_any_other() {
    // The guard's event goes through the same pipeline as `log_event`.
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    in_run(&client, async {
        fabraix::log_event(Event::text(fabraix::EventType::User, "move money")).unwrap();
        transfer_funds(account(), 1).await.unwrap();
    })
    .await;
    let kinds: Vec<_> = server
        .requests_to(Endpoint::Event)
        .iter()
        .map(|r| r.body["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["user", "tool"]);
}
