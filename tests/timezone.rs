//! The registration timestamp is UTC, with milliseconds and `Z`, whatever the machine's
//! time zone says.
//!
//! Setting `TZ` inside a running test process races with every other thread, so the
//! parent test runs this binary again as a child process per zone, with `TZ` set and
//! `FABRAIX_TZ_CHILD=1`, filtered to the child test below.

use std::process::Command;

use chrono::{DateTime, Local, Utc};

const CHILD_FLAG: &str = "FABRAIX_TZ_CHILD";
/// The child checks that the zone took effect: the local offset it must see, in seconds.
const CHILD_OFFSET: &str = "FABRAIX_TZ_EXPECTED_OFFSET";
/// What a child prints once it has checked a timestamp, so the parent knows it ran.
const CHILD_DONE: &str = "fabraix-tz-child-checked";

/// Zones with offsets that are not whole hours, on both sides of UTC, given by name
/// (read from the system's zone database) and as POSIX rules (read from the variable
/// itself). Offsets are those of standard time in these zones when no daylight saving
/// applies; each name is paired with the rule that fixes its offset for the check.
const ZONES: &[(&str, i32)] = &[
    // India has no daylight saving: +05:30 all year.
    ("Asia/Kolkata", 5 * 3600 + 1800),
    // Nepal: +05:45 all year.
    ("Asia/Kathmandu", 5 * 3600 + 2700),
    // Marquesas: -09:30 all year.
    ("Pacific/Marquesas", -(9 * 3600 + 1800)),
    ("IST-5:30", 5 * 3600 + 1800),
    ("NST+3:30", -(3 * 3600 + 1800)),
    ("CHAST-12:45", 12 * 3600 + 2700),
    ("XXX+11", -11 * 3600),
];

/// Zones whose offset changes over the year: checked for the timestamp only.
const SEASONAL_ZONES: &[&str] = &["America/St_Johns", "Pacific/Chatham", "Australia/Lord_Howe"];

fn run_child(zone: &str, expected_offset: Option<i32>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_registers_with_a_utc_timestamp",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_FLAG, "1")
        .env("TZ", zone);
    match expected_offset {
        Some(offset) => command.env(CHILD_OFFSET, offset.to_string()),
        None => command.env_remove(CHILD_OFFSET),
    };
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "TZ={zone}: the child failed\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(CHILD_DONE) || stderr.contains(CHILD_DONE),
        "TZ={zone}: the child test did not run\n{stdout}\n{stderr}"
    );
}

#[test]
fn registration_timestamp_is_utc_in_every_time_zone() {
    if std::env::var_os(CHILD_FLAG).is_some() {
        return;
    }
    let have_zone_database = std::path::Path::new("/usr/share/zoneinfo/Asia/Kolkata").exists();
    for (zone, offset) in ZONES {
        if zone.contains('/') && !have_zone_database {
            eprintln!("skipping TZ={zone}: no zone database on this machine");
            continue;
        }
        run_child(zone, Some(*offset));
    }
    if have_zone_database {
        for zone in SEASONAL_ZONES {
            run_child(zone, None);
        }
    }
}

/// Runs only as a child of the test above.
#[test]
fn child_registers_with_a_utc_timestamp() {
    if std::env::var_os(CHILD_FLAG).is_none() {
        return;
    }
    let zone = std::env::var("TZ").unwrap();
    // The zone took effect in this process.
    let local_offset = Local::now().offset().local_minus_utc();
    if let Some(expected) = std::env::var_os(CHILD_OFFSET) {
        let expected: i32 = expected.to_str().unwrap().parse().unwrap();
        assert_eq!(local_offset, expected, "TZ={zone} did not take effect");
    } else {
        assert_ne!(local_offset, 0, "TZ={zone} did not take effect");
    }

    let server = fabraix::testing::MockServer::start_blocking().unwrap();
    let before = Utc::now();
    server
        .client()
        .register_agent_run_blocking(fabraix::AgentId::from_name("tz").unwrap(), "p")
        .unwrap();
    let after = Utc::now();

    let requests = server.requests();
    let timestamp = requests[0].body["timestamp"].as_str().unwrap().to_owned();
    // Exactly `YYYY-MM-DDTHH:mm:ss.sssZ`.
    let shape_ok = timestamp.len() == 24
        && timestamp.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    assert!(shape_ok, "TZ={zone}: {timestamp}");
    // And it is the UTC time now, not the local time labelled `Z`.
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339(&timestamp)
        .unwrap()
        .with_timezone(&Utc);
    let slack = chrono::Duration::milliseconds(1);
    assert!(
        at >= before - slack && at <= after + slack,
        "TZ={zone} (offset {local_offset}s): sent {timestamp}, the time was between {before} and {after}"
    );
    println!("{CHILD_DONE} TZ={zone} offset={local_offset}s timestamp={timestamp}");
}
