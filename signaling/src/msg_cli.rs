//! `samtale msg …`: a terminal messaging client on the Rust client library.
//!
//! The device's state lives in an encrypted vault file (`--vault`, default
//! `samtale-msg.vault`), its key derived from a passphrase
//! (`SAMTALE_MSG_PASSPHRASE`, or asked on the terminal) with the salt in
//! `<vault>.salt`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use samtale_messaging::client::{Client, Content, VaultKey};
use samtale_messaging::model::ProfileKind;
use samtale_messaging::store::{Conversation, ConversationKind, Member};
use samtale_messaging::{AccountId, ConversationId, DeviceId, ProfileId};

/// Messaging from a terminal.
#[derive(Debug, Args)]
pub struct MsgArgs {
    /// The encrypted state file of this device.
    #[arg(long, env = "SAMTALE_MSG_VAULT", default_value = "samtale-msg.vault")]
    vault: PathBuf,
    /// Also trust this CA (PEM) for https:// servers, e.g. a private
    /// deployment's own CA.
    #[arg(long, env = "SAMTALE_MSG_CA_FILE")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: MsgCommand,
}

#[derive(Debug, Subcommand)]
enum MsgCommand {
    /// Create an account with this device.
    Register {
        /// Server URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        server: String,
        /// Your display name.
        #[arg(long)]
        name: String,
        /// A name for this device.
        #[arg(long, default_value = "terminal")]
        device_name: String,
    },
    /// Add this device to an existing account: shows a code to approve on a
    /// device of that account, then waits (at most 5 minutes).
    Pair {
        /// Server URL.
        #[arg(long)]
        server: String,
        /// A name for this device.
        #[arg(long, default_value = "terminal")]
        device_name: String,
    },
    /// Approve a new device by its pair code or QR payload.
    Approve {
        /// The code (or `samtale-pair:` payload).
        code: String,
    },
    /// Show this account, device and profiles (ids to share with contacts).
    Whoami,
    /// The account's devices.
    Devices,
    /// Remove one of this account's other devices.
    Unbind {
        /// The device id.
        device: DeviceId,
    },
    /// Start a conversation.
    Start {
        /// My profile: work, private or a profile id.
        #[arg(long, default_value = "private")]
        profile: String,
        /// Others as `ACCOUNT:PROFILE` (from their `whoami`); none for a
        /// note to self, several for a group.
        #[arg(long = "with")]
        with: Vec<String>,
        /// Make it a group even with one other member.
        #[arg(long)]
        group: bool,
    },
    /// List a profile's conversations.
    Conversations {
        /// work, private or a profile id.
        #[arg(long, default_value = "private")]
        profile: String,
    },
    /// Send a text message.
    Send {
        /// work, private or a profile id.
        #[arg(long, default_value = "private")]
        profile: String,
        /// The conversation id.
        conversation: ConversationId,
        /// The text.
        text: String,
    },
    /// Print messages as they arrive; stop after `--wait` seconds of quiet.
    Read {
        /// Seconds to wait for the next message.
        #[arg(long, default_value_t = 5)]
        wait: u64,
    },
}

fn salt(vault: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
    let path = vault.with_extension("salt");
    if let Ok(s) = std::fs::read(&path) {
        return Ok(s);
    }
    if !create {
        bail!(
            "no vault at {}: run `samtale msg register` or `pair` first",
            vault.display()
        );
    }
    let s: [u8; 16] = rand::random();
    std::fs::write(&path, s).with_context(|| format!("writing {}", path.display()))?;
    Ok(s.to_vec())
}

fn vault_key(vault: &Path, create: bool) -> anyhow::Result<VaultKey> {
    let salt = salt(vault, create)?;
    let pass = match std::env::var("SAMTALE_MSG_PASSPHRASE") {
        Ok(p) => p,
        Err(_) => {
            eprint!("vault passphrase: ");
            std::io::stderr().flush()?;
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if pass.is_empty() {
        bail!("an empty passphrase would leave the vault unprotected");
    }
    Ok(VaultKey::from_passphrase(&pass, &salt))
}

async fn profile(c: &mut Client, name: &str) -> anyhow::Result<ProfileId> {
    match name {
        "work" => Ok(c.profile_id(&ProfileKind::Work).await?),
        "private" => Ok(c.profile_id(&ProfileKind::Private).await?),
        id => id.parse().context("profile: work, private or a profile id"),
    }
}

fn parse_member(s: &str) -> anyhow::Result<Member> {
    let (account, profile) = s
        .split_once(':')
        .context("members are ACCOUNT:PROFILE (see their `samtale msg whoami`)")?;
    Ok(Member {
        account_id: account.parse::<AccountId>().context("account id")?,
        profile_id: profile.parse::<ProfileId>().context("profile id")?,
    })
}

async fn conversation(
    c: &mut Client,
    profile: ProfileId,
    id: ConversationId,
) -> anyhow::Result<Conversation> {
    c.conversations(profile)
        .await?
        .into_iter()
        .find(|conv| conv.id == id)
        .context("no such conversation in this profile")
}

/// Run `samtale msg …`.
pub async fn run(args: MsgArgs) -> anyhow::Result<()> {
    if let Some(ca) = &args.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        samtale_messaging::client::transport::trust_extra_roots(&pem)?;
    }
    let vault = args.vault;
    match args.command {
        MsgCommand::Register {
            server,
            name,
            device_name,
        } => {
            if vault.exists() {
                bail!("{} exists: this device is set up already", vault.display());
            }
            let key = vault_key(&vault, true)?;
            let mut c = Client::register(&server, &name, &device_name).await?;
            c.keep_in(vault, key)?;
            let me = c.caller();
            println!(
                "registered account {} device {}",
                me.account_id, me.device_id
            );
        }
        MsgCommand::Pair {
            server,
            device_name,
        } => {
            if vault.exists() {
                bail!("{} exists: this device is set up already", vault.display());
            }
            let key = vault_key(&vault, true)?;
            let pending = Client::start_pairing(&server, &device_name).await?;
            println!("pair code: {}", pending.code);
            println!("qr: {}", pending.qr);
            std::io::stdout().flush()?;
            let mut c = pending.wait(Duration::from_secs(300)).await?;
            c.keep_in(vault, key)?;
            let me = c.caller();
            println!(
                "paired into account {} as device {}",
                me.account_id, me.device_id
            );
        }
        command => {
            let key = vault_key(&vault, false)?;
            let mut c = Client::open(vault, key).await?;
            run_open(&mut c, command).await?;
        }
    }
    Ok(())
}

async fn run_open(c: &mut Client, command: MsgCommand) -> anyhow::Result<()> {
    match command {
        MsgCommand::Register { .. } | MsgCommand::Pair { .. } => {}
        MsgCommand::Approve { code } => {
            let device = c.approve_pairing(&code).await?;
            println!("approved device {device}");
        }
        MsgCommand::Whoami => {
            let me = c.caller();
            println!("account {}", me.account_id);
            println!("device {}", me.device_id);
            for p in c.profiles(&[]).await? {
                println!(
                    "profile {:?} {} (share as {}:{})",
                    p.kind, p.display_name, me.account_id, p.id
                );
            }
        }
        MsgCommand::Devices => {
            let me = c.caller().account_id;
            let r: samtale_messaging::service::api::DevicesResponse = c
                .request("devices", serde_json::json!({ "account_id": me }))
                .await?;
            for d in r.devices {
                println!("device {}", d.device_id);
            }
        }
        MsgCommand::Unbind { device } => {
            c.unbind(device).await?;
            println!("unbound {device}");
        }
        MsgCommand::Start {
            profile: p,
            with,
            group,
        } => {
            let p = profile(c, &p).await?;
            let others = with
                .iter()
                .map(|s| parse_member(s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let kind = match (others.len(), group) {
                (0, _) => ConversationKind::NoteToSelf,
                (1, false) => ConversationKind::Direct,
                _ => ConversationKind::Group,
            };
            let conv = c.create_conversation(p, kind, others).await?;
            println!("conversation {}", conv.id);
        }
        MsgCommand::Conversations { profile: p } => {
            let p = profile(c, &p).await?;
            for conv in c.conversations(p).await? {
                println!(
                    "conversation {} {:?} {} members",
                    conv.id,
                    conv.kind,
                    conv.members.len()
                );
            }
        }
        MsgCommand::Send {
            profile: p,
            conversation: id,
            text,
        } => {
            let p = profile(c, &p).await?;
            let conv = conversation(c, p, id).await?;
            let sent = c.send_text(&conv, p, &text).await?;
            println!("sent #{}", sent.seq);
        }
        MsgCommand::Read { wait } => {
            while let Some(m) = c.receive(Duration::from_secs(wait)).await? {
                match m.content {
                    Ok(Content::Text { body }) => {
                        println!(
                            "[{}] #{} {}: {}",
                            m.conversation_id, m.seq, m.sender_device, body
                        )
                    }
                    Ok(other) => println!("[{}] #{} {other:?}", m.conversation_id, m.seq),
                    Err(e) => println!("[{}] #{} unreadable: {e}", m.conversation_id, m.seq),
                }
            }
        }
    }
    Ok(())
}
