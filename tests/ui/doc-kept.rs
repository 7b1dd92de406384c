//! The attribute keeps doc comments: only the fn without one is reported.
#![deny(missing_docs)]

/// Answers support questions.
#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
pub fn documented() {}

#[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
pub fn undocumented() {}

fn main() {}
