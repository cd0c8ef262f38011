//! The per-profile notification policy and the pure engine that applies it.
//!
//! For an incoming message or call at a given instant, [`decide`] returns
//! [`Decision::Notify`], [`Decision::DeliverSilently`] or [`Decision::Hold`].
//! Do-not-disturb windows are evaluated in the profile's own time zone
//! (`chrono-tz`), so "work is silent outside 08:00–17:00 on weekdays" stays
//! right across daylight-saving changes. Nothing here reads the clock:
//! callers pass the instant (or a [`Clock`] through
//! [`PolicyEngine`]).

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// A profile's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The client must ask for a PIN/biometric before showing this profile.
    pub require_unlock: bool,
    /// Quiet hours, if any.
    pub do_not_disturb: Option<DoNotDisturb>,
    /// What notifies outside quiet hours.
    pub notify: NotifyRule,
}

impl Default for Policy {
    /// Everything notifies, no quiet hours, no unlock.
    fn default() -> Self {
        Self {
            require_unlock: false,
            do_not_disturb: None,
            notify: NotifyRule::Everything,
        }
    }
}

impl Policy {
    /// The usual work profile: silent outside 08:00–17:00 Monday to Friday
    /// in `tz`, everything notifies inside those hours.
    pub fn work_hours(tz: Tz) -> Self {
        let start = NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN);
        let end = NaiveTime::from_hms_opt(17, 0, 0).unwrap_or(NaiveTime::MIN);
        Self {
            require_unlock: false,
            do_not_disturb: Some(DoNotDisturb {
                time_zone: tz,
                schedule: Schedule::QuietOutside(vec![Window {
                    days: WEEKDAYS.to_vec(),
                    start,
                    end,
                }]),
                action: DndAction::DeliverSilently,
            }),
            notify: NotifyRule::Everything,
        }
    }
}

/// Monday to Friday.
pub const WEEKDAYS: [Weekday; 5] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
];

/// Which incoming events notify outside quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyRule {
    /// Nothing notifies; everything is delivered silently.
    MuteAll,
    /// Only messages that mention me, and calls, notify.
    MentionsOnly,
    /// Every message and call notifies.
    Everything,
}

/// What quiet hours do to incoming events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DndAction {
    /// Deliver to the device, without sound or banner.
    DeliverSilently,
    /// Keep it on the server until the quiet hours end.
    Hold,
}

/// Quiet hours in one time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoNotDisturb {
    /// IANA time zone the windows are written in.
    pub time_zone: Tz,
    /// When it is quiet.
    pub schedule: Schedule,
    /// What happens to events during quiet hours.
    pub action: DndAction,
}

/// A weekly schedule of quiet time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Quiet at any time not inside one of the windows (e.g. work hours).
    QuietOutside(Vec<Window>),
    /// Quiet inside the windows (e.g. nights).
    QuietDuring(Vec<Window>),
}

/// A local-time window on some days of the week. `end <= start` means the
/// window runs past midnight into the next day (it belongs to the day it
/// starts on); `end == start` is a whole day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Days the window starts on.
    pub days: Vec<Weekday>,
    /// Local start time (inclusive).
    pub start: NaiveTime,
    /// Local end time (exclusive).
    pub end: NaiveTime,
}

impl Window {
    fn contains(&self, day: Weekday, time: NaiveTime) -> bool {
        if self.start < self.end {
            self.days.contains(&day) && self.start <= time && time < self.end
        } else {
            (self.days.contains(&day) && time >= self.start)
                || (self.days.contains(&day.pred()) && time < self.end)
        }
    }
}

/// Days searched forward for the end of quiet hours.
const SEARCH_DAYS: i64 = 9;

impl DoNotDisturb {
    /// Is it quiet at `at`?
    pub fn is_quiet(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.time_zone);
        let (day, time) = (local.weekday(), local.time());
        match &self.schedule {
            Schedule::QuietOutside(ws) => !ws.iter().any(|w| w.contains(day, time)),
            Schedule::QuietDuring(ws) => ws.iter().any(|w| w.contains(day, time)),
        }
    }

    /// The first instant after `at` at which it is no longer quiet, or
    /// `None` if the schedule is quiet for the whole week ahead.
    pub fn quiet_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = at.with_timezone(&self.time_zone).date_naive();
        let windows = match &self.schedule {
            Schedule::QuietOutside(ws) | Schedule::QuietDuring(ws) => ws,
        };
        let mut candidates = Vec::new();
        for offset in -1..=SEARCH_DAYS {
            let Some(date) = today.checked_add_signed(Duration::days(offset)) else {
                continue;
            };
            for w in windows {
                let end_date = if w.start < w.end {
                    Some(date)
                } else {
                    date.succ_opt()
                };
                self.push_instants(date, w.start, &mut candidates);
                if let Some(end_date) = end_date {
                    self.push_instants(end_date, w.end, &mut candidates);
                }
            }
        }
        candidates.retain(|c| *c > at);
        candidates.sort();
        candidates.into_iter().find(|c| !self.is_quiet(*c))
    }

    /// The UTC instants at which local `date time` happens: one normally,
    /// two in a fall-back overlap, and the end of the gap in a spring-forward
    /// gap (the first valid local time on a 15-minute grid, which is where
    /// every real DST gap ends).
    fn push_instants(&self, date: NaiveDate, time: NaiveTime, out: &mut Vec<DateTime<Utc>>) {
        let naive = NaiveDateTime::new(date, time);
        match self.time_zone.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => out.push(t.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(a, b) => {
                out.push(a.with_timezone(&Utc));
                out.push(b.with_timezone(&Utc));
            }
            chrono::LocalResult::None => {
                let grid = naive
                    .date()
                    .and_hms_opt(naive.hour(), 0, 0)
                    .unwrap_or(naive);
                for k in 1..=12 {
                    let probe = grid + Duration::minutes(15 * k);
                    if let Some(t) = self.time_zone.from_local_datetime(&probe).earliest() {
                        out.push(t.with_timezone(&Utc));
                        break;
                    }
                }
            }
        }
    }
}

/// What arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Incoming {
    /// A message; `mentions_me` when it names the recipient.
    Message {
        /// Whether the message mentions the recipient.
        mentions_me: bool,
    },
    /// An incoming call.
    Call,
}

/// What to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// Deliver with sound/banner (or ring).
    Notify,
    /// Deliver without sound or banner.
    DeliverSilently,
    /// Keep it on the server until `until` (`None`: no end within a week).
    Hold {
        /// When quiet hours end.
        until: Option<DateTime<Utc>>,
    },
}

/// Apply `policy` to `incoming` at instant `at`.
pub fn decide(policy: &Policy, incoming: Incoming, at: DateTime<Utc>) -> Decision {
    if let Some(dnd) = &policy.do_not_disturb
        && dnd.is_quiet(at)
    {
        return match dnd.action {
            DndAction::DeliverSilently => Decision::DeliverSilently,
            DndAction::Hold => Decision::Hold {
                until: dnd.quiet_until(at),
            },
        };
    }
    let addressed = match incoming {
        Incoming::Call => true,
        Incoming::Message { mentions_me } => mentions_me,
    };
    match policy.notify {
        NotifyRule::MuteAll => Decision::DeliverSilently,
        NotifyRule::MentionsOnly if !addressed => Decision::DeliverSilently,
        NotifyRule::MentionsOnly | NotifyRule::Everything => Decision::Notify,
    }
}

/// [`decide`] with the instant taken from a clock.
pub struct PolicyEngine<C> {
    clock: C,
}

impl<C: Clock> PolicyEngine<C> {
    /// An engine reading `clock`.
    pub fn new(clock: C) -> Self {
        Self { clock }
    }

    /// Apply `policy` to `incoming` now.
    pub fn decide(&self, policy: &Policy, incoming: Incoming) -> Decision {
        decide(policy, incoming, self.clock.now())
    }
}
