//! Table-driven tests of the policy engine with injected instants, including
//! daylight-saving transitions in Europe/Oslo (2026-03-29 spring forward at
//! 01:00 UTC, 2026-10-25 fall back at 01:00 UTC).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Oslo;
use samtale_messaging::ManualClock;
use samtale_messaging::policy::{
    Decision, DndAction, DoNotDisturb, Incoming, NotifyRule, Policy, PolicyEngine, Schedule,
    Window, decide,
};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

const MSG: Incoming = Incoming::Message { mentions_me: false };
const MENTION: Incoming = Incoming::Message { mentions_me: true };
const CALL: Incoming = Incoming::Call;

#[test]
fn work_hours_across_spring_forward() {
    let work = Policy::work_hours(Oslo);
    let mut held = work.clone();
    held.do_not_disturb.as_mut().unwrap().action = DndAction::Hold;
    use Decision::*;
    let table = [
        // Fri 27 Mar, CET (UTC+1): 07:30 local is before work.
        (&work, utc(2026, 3, 27, 6, 30), MSG, DeliverSilently),
        (&work, utc(2026, 3, 27, 7, 0), MSG, Notify),
        (&work, utc(2026, 3, 27, 15, 59), CALL, Notify),
        (&work, utc(2026, 3, 27, 16, 0), CALL, DeliverSilently),
        // Sat: quiet all day.
        (&work, utc(2026, 3, 28, 11, 0), MENTION, DeliverSilently),
        // Mon 30 Mar, CEST (UTC+2): the same UTC instant 06:30 is 08:30 local.
        (&work, utc(2026, 3, 30, 6, 30), MSG, Notify),
        (&work, utc(2026, 3, 30, 5, 59), MSG, DeliverSilently),
        (&work, utc(2026, 3, 30, 15, 0), MSG, DeliverSilently),
        // Hold: Friday evening is held until Monday 08:00 CEST = 06:00 UTC.
        (
            &held,
            utc(2026, 3, 27, 16, 30),
            MSG,
            Hold {
                until: Some(utc(2026, 3, 30, 6, 0)),
            },
        ),
        // Friday early morning is held until 08:00 CET = 07:00 UTC.
        (
            &held,
            utc(2026, 3, 27, 5, 0),
            CALL,
            Hold {
                until: Some(utc(2026, 3, 27, 7, 0)),
            },
        ),
        (&held, utc(2026, 3, 27, 9, 0), CALL, Notify),
    ];
    for (i, (policy, at, incoming, want)) in table.into_iter().enumerate() {
        assert_eq!(decide(policy, incoming, at), want, "row {i} at {at}");
    }
}

#[test]
fn night_window_across_fall_back_and_gap() {
    // Quiet 22:00–07:00 every night, held.
    let nights = Policy {
        require_unlock: false,
        do_not_disturb: Some(DoNotDisturb {
            time_zone: Oslo,
            schedule: Schedule::QuietDuring(vec![Window {
                days: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun,
                ],
                start: t(22, 0),
                end: t(7, 0),
            }]),
            action: DndAction::Hold,
        }),
        notify: NotifyRule::Everything,
    };
    // A window that starts inside the spring-forward gap (02:00–03:00 local
    // does not exist on 29 Mar).
    let gap = Policy {
        do_not_disturb: Some(DoNotDisturb {
            time_zone: Oslo,
            schedule: Schedule::QuietDuring(vec![Window {
                days: vec![Weekday::Sun],
                start: t(2, 15),
                end: t(6, 0),
            }]),
            action: DndAction::Hold,
        }),
        ..Policy::default()
    };
    use Decision::*;
    let table = [
        // Sat 24 Oct 23:00 CEST = 21:00 UTC: quiet until Sun 07:00 CET =
        // 06:00 UTC (the night is one hour longer).
        (
            &nights,
            utc(2026, 10, 24, 21, 0),
            MSG,
            Hold {
                until: Some(utc(2026, 10, 25, 6, 0)),
            },
        ),
        // 21:59 CEST is still awake.
        (&nights, utc(2026, 10, 24, 19, 59), MSG, Notify),
        // Inside the repeated hour (02:30 local happens twice).
        (
            &nights,
            utc(2026, 10, 25, 0, 30),
            CALL,
            Hold {
                until: Some(utc(2026, 10, 25, 6, 0)),
            },
        ),
        (&nights, utc(2026, 10, 25, 6, 0), MSG, Notify),
        // Spring-forward gap: 00:59 UTC = 01:59 CET, awake.
        (&gap, utc(2026, 3, 29, 0, 59), MSG, Notify),
        // 01:00 UTC = 03:00 CEST: local time jumped past 02:15, so quiet,
        // until 06:00 CEST = 04:00 UTC.
        (
            &gap,
            utc(2026, 3, 29, 1, 0),
            MSG,
            Hold {
                until: Some(utc(2026, 3, 29, 4, 0)),
            },
        ),
        (&gap, utc(2026, 3, 29, 4, 0), MSG, Notify),
    ];
    for (i, (policy, at, incoming, want)) in table.into_iter().enumerate() {
        assert_eq!(decide(policy, incoming, at), want, "row {i} at {at}");
    }
}

#[test]
fn notify_rules_outside_quiet_hours() {
    let with = |notify| Policy {
        notify,
        ..Policy::default()
    };
    let at = utc(2026, 6, 1, 12, 0);
    use Decision::*;
    let table = [
        (NotifyRule::Everything, MSG, Notify),
        (NotifyRule::Everything, CALL, Notify),
        (NotifyRule::MentionsOnly, MSG, DeliverSilently),
        (NotifyRule::MentionsOnly, MENTION, Notify),
        (NotifyRule::MentionsOnly, CALL, Notify),
        (NotifyRule::MuteAll, MENTION, DeliverSilently),
        (NotifyRule::MuteAll, CALL, DeliverSilently),
    ];
    for (rule, incoming, want) in table {
        assert_eq!(
            decide(&with(rule), incoming, at),
            want,
            "{rule:?} {incoming:?}"
        );
    }
}

#[test]
fn always_quiet_has_no_end_and_engine_reads_injected_clock() {
    let never = Policy {
        do_not_disturb: Some(DoNotDisturb {
            time_zone: Oslo,
            schedule: Schedule::QuietOutside(vec![]),
            action: DndAction::Hold,
        }),
        ..Policy::default()
    };
    assert_eq!(
        decide(&never, MSG, utc(2026, 1, 1, 0, 0)),
        Decision::Hold { until: None }
    );

    let clock = ManualClock::new(utc(2026, 3, 27, 6, 30));
    let engine = PolicyEngine::new(&clock);
    let work = Policy::work_hours(Oslo);
    assert_eq!(engine.decide(&work, MSG), Decision::DeliverSilently);
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(engine.decide(&work, MSG), Decision::Notify);
}

#[test]
fn policy_serde_round_trip() {
    let p = Policy::work_hours(Oslo);
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("Europe/Oslo"));
    let back: Policy = serde_json::from_str(&json).unwrap();
    assert_eq!(p, back);
    assert!(serde_json::from_str::<Policy>(&json.replace("Europe/Oslo", "Mars/Base")).is_err());
}
