//! The notes tools the tests give their rig agents: `read_note { name }` and
//! `delete_note { name }`, over an in-memory notebook that records every call that ran.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rig_core::tool::PortableTool;
use serde::Deserialize;
use serde_json::{Value, json};

/// The notes, and the tool bodies that ran (`"<tool> <name>"`, in order).
#[derive(Clone, Default)]
pub struct Notebook {
    notes: Arc<Mutex<BTreeMap<String, String>>>,
    ran: Arc<Mutex<Vec<String>>>,
}

impl Notebook {
    pub fn with(notes: &[(&str, &str)]) -> Self {
        let book = Self::default();
        lock(&book.notes).extend(
            notes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        book
    }

    /// The tool bodies that ran.
    pub fn ran(&self) -> Vec<String> {
        lock(&self.ran).clone()
    }

    pub fn contains(&self, name: &str) -> bool {
        lock(&self.notes).contains_key(name)
    }

    pub fn read_note(&self) -> ReadNote {
        ReadNote(self.clone())
    }

    pub fn delete_note(&self) -> DeleteNote {
        DeleteNote(self.clone())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Deserialize)]
pub struct NoteArgs {
    pub name: String,
}

#[derive(Debug)]
pub struct NoSuchNote(String);

impl std::fmt::Display for NoSuchNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no note named `{}`", self.0)
    }
}

impl std::error::Error for NoSuchNote {}

/// The parameters schema of both tools.
pub fn note_parameters() -> Value {
    json!({
        "type": "object",
        "properties": { "name": { "type": "string", "description": "The note's name." } },
        "required": ["name"],
    })
}

pub struct ReadNote(Notebook);

impl PortableTool for ReadNote {
    const NAME: &'static str = "read_note";
    type Args = NoteArgs;
    type Output = String;
    type Error = NoSuchNote;

    fn description(&self) -> String {
        "Read a note by its name.".to_owned()
    }

    fn parameters(&self) -> Value {
        note_parameters()
    }

    async fn call(&self, args: NoteArgs) -> Result<String, NoSuchNote> {
        lock(&self.0.ran).push(format!("read_note {}", args.name));
        lock(&self.0.notes)
            .get(&args.name)
            .cloned()
            .ok_or(NoSuchNote(args.name))
    }
}

pub struct DeleteNote(Notebook);

impl PortableTool for DeleteNote {
    const NAME: &'static str = "delete_note";
    type Args = NoteArgs;
    type Output = String;
    type Error = NoSuchNote;

    fn description(&self) -> String {
        "Delete a note by its name.".to_owned()
    }

    fn parameters(&self) -> Value {
        note_parameters()
    }

    async fn call(&self, args: NoteArgs) -> Result<String, NoSuchNote> {
        lock(&self.0.ran).push(format!("delete_note {}", args.name));
        match lock(&self.0.notes).remove(&args.name) {
            Some(_) => Ok(format!("deleted `{}`", args.name)),
            None => Err(NoSuchNote(args.name)),
        }
    }
}
