//! The arguments of `#[fabraix::agent(...)]`, each kept with the tokens the user wrote.

use proc_macro2::TokenStream;
use syn::{Expr, LitStr};

use crate::args::{self, Errors, Setting, expect_expr, expect_str, set_once};

pub(crate) const KEYS: &[&str] = &[
    "id",
    "system_prompt",
    "conversation",
    "on_failure",
    "client",
    "crate",
];

/// What the attribute said, before any cross-argument check.
#[derive(Default)]
pub(crate) struct AgentArgs {
    pub id: Option<Setting<Expr>>,
    pub system_prompt: Option<Setting<Expr>>,
    pub conversation: Option<Setting<Expr>>,
    pub on_failure: Option<Setting<LitStr>>,
    pub client: Option<Setting<Expr>>,
    pub krate: Option<Setting<LitStr>>,
}

pub(crate) fn parse(tokens: TokenStream) -> syn::Result<AgentArgs> {
    let mut out = AgentArgs::default();
    let mut errors = Errors::default();
    for arg in args::parse(tokens)? {
        let key = arg.key;
        let name = key.to_string();
        let stored = match name.as_str() {
            "id" => expect_expr(&key, arg.value, "\"support-bot\"")
                .map(|v| set_once(&mut out.id, &key, v, &mut errors)),
            "system_prompt" => expect_expr(&key, arg.value, "\"You are a support assistant.\"")
                .map(|v| set_once(&mut out.system_prompt, &key, v, &mut errors)),
            "conversation" => expect_expr(&key, arg.value, "&request.conversation_id")
                .map(|v| set_once(&mut out.conversation, &key, v, &mut errors)),
            "on_failure" => expect_str(&key, arg.value, "\"continue\"")
                .map(|v| set_once(&mut out.on_failure, &key, v, &mut errors)),
            "client" => expect_expr(&key, arg.value, "&MY_CLIENT")
                .map(|v| set_once(&mut out.client, &key, v, &mut errors)),
            "crate" => expect_str(&key, arg.value, "\"my_crate::fabraix\"")
                .map(|v| set_once(&mut out.krate, &key, v, &mut errors)),
            _ => Err(args::unknown(&key, KEYS)),
        };
        if let Err(e) = stored {
            errors.push(e);
        }
    }
    errors.finish()?;
    Ok(out)
}
