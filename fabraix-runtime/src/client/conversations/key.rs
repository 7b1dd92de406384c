//! [`ConversationKey`]: how a store names a conversation without holding its id.
//!
//! Conversation ids may identify people (an email, a phone number), and they come from
//! outside (a request body), so no store keeps them: a store keys each conversation by
//! `HMAC-SHA256(secret, agent UUID (16 bytes) || conversation id (UTF-8))`, where the
//! secret is `HMAC-SHA256(API key, "fabraix conversation key v1")`. Every process with the
//! same API key derives the same keys (a shared store can be looked up from any replica),
//! and nobody without the key can tell which id a stored key stands for, nor test guesses.
//! It also gives every entry the same size, however long the id a client sends.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::AgentId;

type HmacSha256 = Hmac<Sha256>;

/// What the secret is derived for: changing it changes every key.
const DERIVATION_LABEL: &[u8] = b"fabraix conversation key v1";

/// One agent's conversation, as every store names it: 32 bytes of keyed hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConversationKey([u8; 32]);

impl ConversationKey {
    /// The first 128 bits, which name the conversation in this process's store: as unlikely
    /// to collide as a UUID (2^64 conversations for even odds), in half the memory.
    pub(crate) fn short(&self) -> [u64; 2] {
        let half = |at: usize| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&self.0[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        [half(0), half(8)]
    }

    /// The key as 64 lowercase hex digits, e.g. for a shared store's key names.
    #[cfg_attr(not(any(test, feature = "redis")), allow(dead_code))]
    pub(crate) fn to_hex(self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Debug for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell keys apart in a log, and says nothing of the id.
        write!(
            f,
            "ConversationKey({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Derives [`ConversationKey`]s under one client's secret.
#[derive(Clone)]
pub(crate) struct KeyDeriver {
    /// HMAC state keyed with the secret, cloned for each key (saves rehashing the key).
    keyed: HmacSha256,
}

impl KeyDeriver {
    /// The deriver of the clients that use `api_key`.
    pub(crate) fn new(api_key: &str) -> Self {
        let secret = mac(api_key.as_bytes(), &[DERIVATION_LABEL]);
        Self {
            keyed: keyed(&secret),
        }
    }

    /// The key of `agent`'s conversation `id`.
    pub(crate) fn key(&self, agent: AgentId, id: &str) -> ConversationKey {
        let mut mac = self.keyed.clone();
        mac.update(agent.as_uuid().as_bytes());
        mac.update(id.as_bytes());
        ConversationKey(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for KeyDeriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyDeriver").finish_non_exhaustive()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac accepts keys of every length"),
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str) -> AgentId {
        AgentId::from_name(name).unwrap()
    }

    #[test]
    fn keys_are_keyed_hashes_of_agent_and_id() {
        let deriver = KeyDeriver::new("sk-one");
        let key = deriver.key(agent("support"), "alice@example.com");
        assert_eq!(key, deriver.key(agent("support"), "alice@example.com"));
        assert_eq!(
            key,
            KeyDeriver::new("sk-one").key(agent("support"), "alice@example.com")
        );
        assert_ne!(key, deriver.key(agent("billing"), "alice@example.com"));
        assert_ne!(key, deriver.key(agent("support"), "bob@example.com"));
        assert_ne!(
            key,
            KeyDeriver::new("sk-two").key(agent("support"), "alice@example.com")
        );
        let hex = key.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(!hex.contains("alice") && !format!("{key:?}").contains("alice"));
    }

    #[test]
    fn keys_match_hmac_sha256_as_documented() {
        // An independent computation of the documented construction.
        let secret = mac(b"sk-one", &[b"fabraix conversation key v1"]);
        let uuid = agent("support");
        let expected = mac(&secret, &[uuid.as_uuid().as_bytes(), b"c-1"]);
        assert_eq!(KeyDeriver::new("sk-one").key(uuid, "c-1").0, expected);
        // HMAC-SHA256 itself, RFC 4231 test case 2.
        let rfc = mac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            ConversationKey(rfc).to_hex(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
