//! The streamed answer being assembled, delta by delta, until the stream ends.
//!
//! A streamed answer that completes reaches the hook whole (rig assembles it, tool calls
//! included, and hands it to `on_outcome`), and is logged from there. This buffer keeps
//! what has arrived of the answer in flight, so that a stream that breaks off is still
//! logged once, with its text and its tool calls as far as they got, rather than lost or
//! logged as fragments.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::record::Part;

/// What has arrived of the answer streaming now.
#[derive(Debug, Default)]
pub(crate) struct StreamedTurn {
    turn: usize,
    text: String,
    /// Tool calls by their position in the answer.
    calls: BTreeMap<usize, PartialCall>,
}

#[derive(Debug, Default)]
struct PartialCall {
    name: String,
    arguments: String,
}

impl StreamedTurn {
    /// A text fragment of the answer to model call `turn`.
    pub(crate) fn push_text(&mut self, turn: usize, delta: &str) {
        self.enter(turn);
        self.text.push_str(delta);
    }

    /// An argument fragment of the tool call at `index` in the answer to model call `turn`.
    pub(crate) fn push_tool_call(&mut self, turn: usize, index: usize, name: &str, delta: &str) {
        self.enter(turn);
        let call = self.calls.entry(index).or_default();
        if call.name.is_empty() {
            name.clone_into(&mut call.name);
        }
        call.arguments.push_str(delta);
    }

    /// A new turn's fragments replace what was left of another turn's.
    fn enter(&mut self, turn: usize) {
        if self.turn != turn {
            self.clear();
            self.turn = turn;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty() && self.calls.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.calls.clear();
    }

    /// Takes what has arrived: the turn it belongs to and its parts, text first, then
    /// the tool calls in order. A call's arguments are its JSON object when they had
    /// arrived whole, else the text received so far. A call has no id until its end
    /// arrives, so a partial call's id is empty.
    pub(crate) fn take(&mut self) -> (usize, Vec<Part>) {
        let mut parts = Vec::with_capacity(1 + self.calls.len());
        if !self.text.is_empty() {
            parts.push(Part::Text {
                text: std::mem::take(&mut self.text),
            });
        }
        for (_, call) in std::mem::take(&mut self.calls) {
            let arguments = match serde_json::from_str::<Value>(&call.arguments) {
                Ok(object @ Value::Object(_)) => object,
                _ => Value::String(call.arguments),
            };
            parts.push(Part::ToolCall {
                id: String::new(),
                name: call.name,
                arguments,
            });
        }
        (self.turn, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn assembles_text_and_calls_in_order() {
        let mut turn = StreamedTurn::default();
        turn.push_text(1, "Tidying ");
        turn.push_tool_call(1, 1, "read_note", "{\"name\":");
        turn.push_text(1, "now.");
        turn.push_tool_call(1, 2, "delete_note", "{\"na");
        turn.push_tool_call(1, 1, "", "\"groceries\"}");
        let (index, parts) = turn.take();
        assert_eq!(index, 1);
        assert_eq!(
            parts,
            vec![
                Part::Text {
                    text: "Tidying now.".into()
                },
                Part::ToolCall {
                    id: String::new(),
                    name: "read_note".into(),
                    arguments: json!({ "name": "groceries" }),
                },
                Part::ToolCall {
                    id: String::new(),
                    name: "delete_note".into(),
                    arguments: json!("{\"na"),
                },
            ]
        );
        assert!(turn.is_empty());
    }

    #[test]
    fn a_new_turn_drops_the_last_ones_fragments() {
        let mut turn = StreamedTurn::default();
        turn.push_text(1, "old");
        turn.push_tool_call(1, 0, "read_note", "{");
        turn.push_text(2, "new");
        let (index, parts) = turn.take();
        assert_eq!(index, 2);
        assert_eq!(parts, vec![Part::Text { text: "new".into() }]);
    }
}
