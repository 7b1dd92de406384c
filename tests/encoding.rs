//! A number JSON cannot hold (NaN, an infinity) is refused with `Error::Encode` wherever a
//! value becomes JSON (an event's data, an action's arguments, a guarded tool's arguments),
//! never sent as the `null` serde_json would write in its place. A real `null` still goes.

use std::sync::atomic::{AtomicUsize, Ordering};

use fabraix::testing::{Endpoint, MockServer};
use fabraix::{Action, Client, Error, Event, EventType};
use serde::Serialize;
use serde_json::json;

#[derive(Serialize, schemars::JsonSchema)]
struct Reading {
    sensor: String,
    celsius: f64,
    previous: Option<f64>,
}

fn reading(celsius: f64) -> Reading {
    Reading {
        sensor: "null-room".into(),
        celsius,
        previous: None,
    }
}

const NOT_FINITE: [f64; 3] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];

fn assert_not_finite(outcome: Result<impl std::fmt::Debug, Error>) {
    match outcome {
        Err(Error::Encode { message, .. }) => {
            assert!(message.contains("NaN or infinite"), "{message}")
        }
        other => panic!("expected Error::Encode, got {other:?}"),
    }
}

#[test]
fn events_refuse_nan_and_infinities() {
    for value in NOT_FINITE {
        assert_not_finite(Event::json(
            EventType::Environment,
            &vec![1.0, value],
            json!({ "type": "array" }),
        ));
        assert_not_finite(Event::typed(EventType::Environment, &reading(value)));
        assert_not_finite(Event::typed(EventType::Environment, &(value as f32)));
    }
    // A `null` of the data's own, and the word in a string, are not mistaken for one.
    let event = Event::typed(EventType::Environment, &reading(21.5)).unwrap();
    assert_eq!(
        event.content(),
        r#"{"sensor":"null-room","celsius":21.5,"previous":null}"#
    );
}

#[tokio::test]
async fn checks_of_arguments_with_nan_are_refused_before_sending() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let trace = client
        .register_agent_run("thermostat", "You set temperatures.")
        .await
        .unwrap();

    for value in NOT_FINITE {
        let by_value = Action::new("set_temperature").arguments(&[value]);
        assert_not_finite(client.check_action(trace.trace_id(), &by_value).await);
        assert_not_finite(Action::typed(
            "set_temperature",
            "Set the room's temperature.",
            &reading(value),
        ));
    }
    assert!(server.requests_to(Endpoint::Check).is_empty());

    // The same action with a finite value is checked.
    let fine = Action::typed("set_temperature", "Set it.", &reading(19.0)).unwrap();
    assert!(client.check_action(trace.trace_id(), &fine).await.is_ok());
    assert_eq!(server.requests_to(Endpoint::Check).len(), 1);
}

static SET: AtomicUsize = AtomicUsize::new(0);

/// Set the room's temperature.
#[fabraix::action]
async fn set_temperature(celsius: f64, reading: Option<Reading>) -> Result<f64, Error> {
    SET.fetch_add(1, Ordering::SeqCst);
    Ok(celsius)
}

#[tokio::test]
async fn a_guarded_tool_with_a_nan_argument_is_refused_and_never_runs() {
    let server = MockServer::start().await.unwrap();

    #[fabraix::agent(id = "thermostat", system_prompt = "You set temperatures.", client = client)]
    async fn agent(client: &Client) -> Vec<Result<f64, Error>> {
        vec![
            set_temperature(f64::NAN, None).await,
            set_temperature(20.0, Some(reading(f64::INFINITY))).await,
            set_temperature(20.0, Some(reading(20.0))).await,
        ]
    }

    let outcomes = agent(&server.client()).await;
    let [nan, nested, fine] = <[_; 3]>::try_from(outcomes).unwrap();
    for refused in [nan, nested] {
        match refused {
            Err(Error::Encode { message, .. }) => {
                assert!(message.contains("NaN or infinite"), "{message}")
            }
            other => panic!("expected Error::Encode, got {other:?}"),
        }
    }
    assert_eq!(fine.unwrap(), 20.0);
    assert_eq!(SET.load(Ordering::SeqCst), 1, "only the finite call ran");
    assert_eq!(server.requests_to(Endpoint::Check).len(), 1);
}
