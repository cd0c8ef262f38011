//! The ICE-servers list each client gets on join: configured STUN/TURN
//! entries plus fresh TURN REST-API credentials for the embedded TURN
//! server and for the TURN nodes of the client's region.

use std::time::Duration;

use crate::config::{IceServer, TurnNode};

/// What signaling knows about TURN.
#[derive(Clone)]
pub struct TurnInfo {
    /// The shared REST-API secret.
    pub secret: Vec<u8>,
    /// URLs of the embedded TURN server (empty when it is off).
    pub embedded_urls: Vec<String>,
    /// TURN nodes run elsewhere.
    pub nodes: Vec<TurnNode>,
    /// Credential lifetime.
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnInfo")
            .field("secret", &"<redacted>")
            .field("embedded_urls", &self.embedded_urls)
            .field("nodes", &self.nodes)
            .finish()
    }
}

/// The list for one client. `user` names it in the TURN username
/// (`expiry:user`); `region` picks nodes (all nodes when none match).
pub fn ice_servers(
    configured: &[IceServer],
    turn: Option<&TurnInfo>,
    user: &str,
    region: Option<&str>,
    now_unix: u64,
) -> Vec<IceServer> {
    let mut out = configured.to_vec();
    let Some(turn) = turn else { return out };
    let creds = samtale_turn::mint_rest_credentials(&turn.secret, user, turn.ttl, now_unix);
    let with_creds = |urls: Vec<String>| IceServer {
        urls,
        username: Some(creds.username.clone()),
        credential: Some(creds.password.clone()),
    };
    let in_region: Vec<&TurnNode> = match region {
        Some(r) if turn.nodes.iter().any(|n| n.region == r) => {
            turn.nodes.iter().filter(|n| n.region == r).collect()
        }
        _ => turn.nodes.iter().collect(),
    };
    for node in in_region {
        out.push(with_creds(node.urls.clone()));
    }
    if !turn.embedded_urls.is_empty() {
        out.push(with_creds(turn.embedded_urls.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> TurnInfo {
        TurnInfo {
            secret: b"s3cret".to_vec(),
            embedded_urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            nodes: vec![
                TurnNode {
                    urls: vec!["turn:north.example:3478".into()],
                    region: "eu-north-1".into(),
                },
                TurnNode {
                    urls: vec!["turn:west.example:3478".into()],
                    region: "eu-west-1".into(),
                },
            ],
            ttl: Duration::from_secs(600),
        }
    }

    #[test]
    fn region_hint_picks_nodes_and_credentials_are_fresh() {
        let list = ice_servers(&[], Some(&info()), "p7", Some("eu-west-1"), 1000);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].urls, vec!["turn:west.example:3478".to_string()]);
        assert_eq!(list[0].username.as_deref(), Some("1600:p7"));
        let expected =
            samtale_turn::mint_rest_credentials(b"s3cret", "p7", Duration::from_secs(600), 1000);
        assert_eq!(
            list[0].credential.as_deref(),
            Some(expected.password.as_str())
        );
        // Unknown region: every node.
        assert_eq!(
            ice_servers(&[], Some(&info()), "p7", Some("mars"), 1000).len(),
            3
        );
        // No TURN: only what is configured.
        assert!(ice_servers(&[], None, "p7", None, 1000).is_empty());
        assert!(!format!("{:?}", info()).contains("s3cret"));
    }
}
