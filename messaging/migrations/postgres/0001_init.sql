-- samtale-messaging schema (PostgreSQL). Keep in step with ../sqlite/.
-- Times are Unix milliseconds. The server holds public keys and ciphertext only.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE profiles (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    profile_json TEXT NOT NULL
);
CREATE INDEX profiles_account ON profiles(account_id);
CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    curve25519 TEXT NOT NULL,
    ed25519 TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX devices_account ON devices(account_id);
CREATE TABLE device_lists (
    account_id TEXT PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    signed_json TEXT NOT NULL
);
CREATE TABLE one_time_keys (
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (device_id, key_id)
);
CREATE TABLE fallback_keys (
    device_id TEXT PRIMARY KEY NOT NULL,
    key_json TEXT NOT NULL
);
CREATE TABLE pairings (
    code TEXT PRIMARY KEY NOT NULL,
    offer_json TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    account_id TEXT
);
CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_seq BIGINT NOT NULL
);
CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    profile_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (conversation_id, profile_id)
);
CREATE INDEX conversation_members_profile ON conversation_members(profile_id);
CREATE TABLE contacts (
    owner_profile TEXT NOT NULL,
    contact_profile TEXT NOT NULL,
    contact_account TEXT NOT NULL,
    display_name TEXT NOT NULL,
    PRIMARY KEY (owner_profile, contact_profile)
);
-- One row per accepted message: the idempotency record (no ciphertext).
CREATE TABLE messages (
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    sender_device TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (sender_device, client_msg_id)
);
CREATE INDEX messages_expiry ON messages(expires_at);
-- One row per target device until it acknowledges: the ciphertext.
CREATE TABLE envelopes (
    device_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    sender_device TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, conversation_id, seq)
);
CREATE INDEX envelopes_expiry ON envelopes(expires_at);
