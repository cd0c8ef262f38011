//! The account model: one global account with several profiles (work,
//! private, user-defined and at most one secret profile), each with its own
//! display name, avatar, theme and [`Policy`].
//!
//! The secret profile does not appear in [`Account::visible_profiles`] until
//! the device unlocks it ([`Unlocked`] is device-local state, never sent).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ProfileId};
use crate::policy::Policy;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest avatar reference, in bytes.
pub const MAX_AVATAR_REF_BYTES: usize = 256;
/// Most profiles under one account.
pub const MAX_PROFILES: usize = 16;

/// Errors from building or changing the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Empty, too long, or containing control characters.
    #[error("invalid display name")]
    InvalidDisplayName,
    /// Longer than [`MAX_AVATAR_REF_BYTES`] or with control characters.
    #[error("invalid avatar reference")]
    InvalidAvatar,
    /// A profile of that kind (or custom name) already exists.
    #[error("a profile of that kind already exists")]
    DuplicateProfile,
    /// More than [`MAX_PROFILES`].
    #[error("too many profiles (at most {MAX_PROFILES})")]
    TooManyProfiles,
    /// No such profile under this account.
    #[error("no such profile")]
    UnknownProfile,
}

/// What a profile is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum ProfileKind {
    /// The work persona.
    Work,
    /// The private persona.
    Private,
    /// Hidden from listings until unlocked on the device.
    Secret,
    /// A user-defined profile with its own name (e.g. "sports club").
    Custom(String),
}

/// A theme preset the client applies when the profile is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThemePreset {
    /// Follow the system.
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
    /// High contrast.
    HighContrast,
}

/// A reference to an avatar image in the media pipeline (an object key,
/// never the image itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AvatarRef(String);

impl AvatarRef {
    /// Validate a reference.
    pub fn new(s: impl Into<String>) -> Result<Self, ModelError> {
        let s = s.into();
        if s.is_empty() || s.len() > MAX_AVATAR_REF_BYTES || s.chars().any(char::is_control) {
            return Err(ModelError::InvalidAvatar);
        }
        Ok(Self(s))
    }

    /// The reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AvatarRef {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<AvatarRef> for String {
    fn from(a: AvatarRef) -> String {
        a.0
    }
}

/// Check a display name: 1..=64 characters, no control characters.
pub fn validate_display_name(name: &str) -> Result<(), ModelError> {
    let n = name.chars().count();
    if name.trim().is_empty() || n > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ModelError::InvalidDisplayName);
    }
    Ok(())
}

/// One profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Its id.
    pub id: ProfileId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// What it is for.
    pub kind: ProfileKind,
    /// Name shown to contacts of this profile.
    pub display_name: String,
    /// Avatar image reference.
    pub avatar: Option<AvatarRef>,
    /// Theme preset.
    pub theme: ThemePreset,
    /// Notification policy.
    pub policy: Policy,
}

impl Profile {
    /// A new profile with the default policy and system theme.
    pub fn new(
        account_id: AccountId,
        kind: ProfileKind,
        display_name: &str,
    ) -> Result<Self, ModelError> {
        validate_display_name(display_name)?;
        if let ProfileKind::Custom(name) = &kind {
            validate_display_name(name)?;
        }
        let require_unlock = kind == ProfileKind::Secret;
        Ok(Self {
            id: ProfileId::new(),
            account_id,
            kind,
            display_name: display_name.to_owned(),
            avatar: None,
            theme: ThemePreset::System,
            policy: Policy {
                require_unlock,
                ..Policy::default()
            },
        })
    }

    /// Whether listings hide it until unlocked.
    pub fn is_hidden(&self) -> bool {
        self.kind == ProfileKind::Secret
    }
}

/// Device-local set of unlocked hidden profiles. Never leaves the device.
#[derive(Debug, Clone, Default)]
pub struct Unlocked(HashSet<ProfileId>);

impl Unlocked {
    /// Nothing unlocked.
    pub fn none() -> Self {
        Self::default()
    }

    /// Mark `profile` unlocked (after the client checked PIN/biometrics).
    pub fn unlock(&mut self, profile: ProfileId) {
        self.0.insert(profile);
    }

    /// Lock it again.
    pub fn lock(&mut self, profile: ProfileId) {
        self.0.remove(&profile);
    }

    /// Is `profile` unlocked?
    pub fn contains(&self, profile: ProfileId) -> bool {
        self.0.contains(&profile)
    }

    /// The unlocked profiles.
    pub fn iter(&self) -> impl Iterator<Item = &ProfileId> {
        self.0.iter()
    }
}

/// One person's account and its profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Global id.
    pub id: AccountId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its profiles.
    pub profiles: Vec<Profile>,
}

impl Account {
    /// A new account with a `work` and a `private` profile, both named
    /// `display_name`.
    pub fn new(display_name: &str, created_at: DateTime<Utc>) -> Result<Self, ModelError> {
        Self::with_id(AccountId::new(), display_name, created_at)
    }

    /// Like [`Account::new`] with an id chosen by the client.
    pub fn with_id(
        id: AccountId,
        display_name: &str,
        created_at: DateTime<Utc>,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            id,
            created_at,
            profiles: vec![
                Profile::new(id, ProfileKind::Work, display_name)?,
                Profile::new(id, ProfileKind::Private, display_name)?,
            ],
        })
    }

    /// Add a profile; at most one of each built-in kind and unique custom
    /// names.
    pub fn add_profile(
        &mut self,
        kind: ProfileKind,
        display_name: &str,
    ) -> Result<&Profile, ModelError> {
        if self.profiles.len() >= MAX_PROFILES {
            return Err(ModelError::TooManyProfiles);
        }
        if self.profiles.iter().any(|p| p.kind == kind) {
            return Err(ModelError::DuplicateProfile);
        }
        let profile = Profile::new(self.id, kind, display_name)?;
        self.profiles.push(profile);
        self.profiles.last().ok_or(ModelError::UnknownProfile)
    }

    /// The profile with `id`.
    pub fn profile(&self, id: ProfileId) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    /// The profile with `id`, to change.
    pub fn profile_mut(&mut self, id: ProfileId) -> Result<&mut Profile, ModelError> {
        self.profiles
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or(ModelError::UnknownProfile)
    }

    /// The profiles a listing shows: every non-hidden one, and hidden ones
    /// only when unlocked on this device.
    pub fn visible_profiles<'a>(&'a self, unlocked: &Unlocked) -> Vec<&'a Profile> {
        self.profiles
            .iter()
            .filter(|p| !p.is_hidden() || unlocked.contains(p.id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap()
    }

    #[test]
    fn new_account_has_work_and_private() {
        let a = Account::new("Alice", now()).unwrap();
        let kinds: Vec<_> = a.profiles.iter().map(|p| p.kind.clone()).collect();
        assert_eq!(kinds, vec![ProfileKind::Work, ProfileKind::Private]);
        assert!(a.profiles.iter().all(|p| p.account_id == a.id));
    }

    #[test]
    fn secret_profile_hidden_until_unlocked() {
        let mut a = Account::new("Alice", now()).unwrap();
        let secret = a.add_profile(ProfileKind::Secret, "A.").unwrap().id;
        assert!(a.profile(secret).unwrap().policy.require_unlock);
        let mut unlocked = Unlocked::none();
        assert_eq!(a.visible_profiles(&unlocked).len(), 2);
        unlocked.unlock(secret);
        assert_eq!(a.visible_profiles(&unlocked).len(), 3);
        unlocked.lock(secret);
        assert!(a.visible_profiles(&unlocked).iter().all(|p| p.id != secret));
    }

    #[test]
    fn custom_profiles_and_limits() {
        let mut a = Account::new("Alice", now()).unwrap();
        a.add_profile(ProfileKind::Custom("Choir".into()), "Alice S.")
            .unwrap();
        assert_eq!(
            a.add_profile(ProfileKind::Custom("Choir".into()), "x")
                .unwrap_err(),
            ModelError::DuplicateProfile
        );
        assert_eq!(
            a.add_profile(ProfileKind::Work, "x").unwrap_err(),
            ModelError::DuplicateProfile
        );
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(65)] {
            assert_eq!(
                a.add_profile(ProfileKind::Custom("n".into()), bad)
                    .unwrap_err(),
                ModelError::InvalidDisplayName
            );
        }
        for i in a.profiles.len()..MAX_PROFILES {
            a.add_profile(ProfileKind::Custom(format!("p{i}")), "n")
                .unwrap();
        }
        assert_eq!(
            a.add_profile(ProfileKind::Custom("last".into()), "n")
                .unwrap_err(),
            ModelError::TooManyProfiles
        );
    }

    #[test]
    fn avatar_refs_are_validated_and_serde_round_trips() {
        assert!(AvatarRef::new("media/abc123").is_ok());
        assert_eq!(AvatarRef::new(""), Err(ModelError::InvalidAvatar));
        assert_eq!(
            AvatarRef::new("x".repeat(300)),
            Err(ModelError::InvalidAvatar)
        );
        let mut a = Account::new("Alice", now()).unwrap();
        a.profiles[0].avatar = Some(AvatarRef::new("media/a").unwrap());
        a.profiles[0].theme = ThemePreset::Dark;
        let json = serde_json::to_string(&a).unwrap();
        let back: Account = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
        let bad = json.replace("media/a", "");
        assert!(serde_json::from_str::<Account>(&bad).is_err());
    }
}
