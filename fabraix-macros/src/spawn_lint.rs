//! Warns, on the call, when an annotated body hands work to a spawn that drops the trace.
//!
//! Stable Rust has no custom warnings; using a `#[deprecated]` item spanned at the call
//! makes the compiler print one there, with a note that names the fix.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::quote_spanned;

/// The spawns that do not carry the current run, and the marker item for each.
const SPAWNS: &[(&[&str], &str)] = &[
    (&["tokio", "spawn"], "tokio_spawn"),
    (&["tokio", "task", "spawn"], "tokio_spawn"),
    (&["tokio", "task", "spawn_blocking"], "tokio_spawn_blocking"),
    (&["std", "thread", "spawn"], "thread_spawn"),
    (&["thread", "spawn"], "thread_spawn"),
];

/// Words in a spawn's arguments that show the trace is carried by hand.
const CARRIERS: &[&str] = &["in_current_trace", "with_trace", "scope", "sync_scope"];

/// One `let () = marker;` statement per bare spawn found in `body`, spanned at the call.
pub(crate) fn markers(body: &TokenStream, krate: &TokenStream) -> TokenStream {
    let mut found = Vec::new();
    scan(body.clone(), &mut found);
    found
        .into_iter()
        .map(|(span, marker)| {
            let marker = proc_macro2::Ident::new(marker, span);
            quote_spanned! {span=> let () = #krate::__private::lint::#marker; }
        })
        .collect()
}

fn scan(tokens: TokenStream, found: &mut Vec<(Span, &'static str)>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        if let TokenTree::Group(group) = &tokens[i] {
            scan(group.stream(), found);
            i += 1;
            continue;
        }
        let continues_a_path = i >= 3
            && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == ':')
            && matches!(&tokens[i - 3], TokenTree::Ident(_) | TokenTree::Group(_));
        if continues_a_path {
            i += 1;
            continue;
        }
        if let Some((len, marker)) = match_path(&tokens[i..]) {
            let call = tokens.get(i + len);
            let carried = matches!(call, Some(TokenTree::Group(g))
                if g.delimiter() == Delimiter::Parenthesis && mentions_carrier(g.stream()));
            let called = matches!(call, Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
            if called && !carried {
                found.push((tokens[i + len - 1].span(), marker));
            }
            i += len;
            continue;
        }
        i += 1;
    }
}

/// Matches `a::b::c` against [`SPAWNS`]; answers the number of tokens matched and the
/// marker. The caller skips paths that continue another (`my::thread::spawn`).
fn match_path(tokens: &[TokenTree]) -> Option<(usize, &'static str)> {
    'paths: for (path, marker) in SPAWNS {
        let mut n = 0;
        for (k, segment) in path.iter().enumerate() {
            if k > 0 {
                for _ in 0..2 {
                    match tokens.get(n) {
                        Some(TokenTree::Punct(p)) if p.as_char() == ':' => n += 1,
                        _ => continue 'paths,
                    }
                }
            }
            match tokens.get(n) {
                Some(TokenTree::Ident(ident)) if ident == segment => n += 1,
                _ => continue 'paths,
            }
        }
        return Some((n, marker));
    }
    None
}

fn mentions_carrier(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(ident) => CARRIERS.iter().any(|c| ident == c),
        TokenTree::Group(group) => mentions_carrier(group.stream()),
        _ => false,
    })
}
