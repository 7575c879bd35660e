//! The `sched` binary as a user runs it: exit statuses, the streams, the shorthands.
//!
//! Tests that need a working trigger kind are marked as such in their names
//! (`*_prints_*`); the others check what the command does with bad input and how the
//! shorthands relate to the JSON spec.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use chrono::DateTime;

fn sched(args: &[&str]) -> Output {
    sched_with_stdin(args, None)
}

fn sched_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sched"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sched binary");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("run the sched binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Exit status 2, an error on stderr, nothing on stdout.
#[track_caller]
fn assert_usage_error(out: &Output) {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(out));
    assert!(!stderr(out).trim().is_empty(), "stderr is empty");
}

const NOW: &str = "2026-03-27T12:00:00Z";

#[test]
fn bad_json_is_a_usage_error() {
    for spec in ["{", "", "   ", "[1, 2]", "42", "null", r#"{"type": 7}"#] {
        let out = sched(&["next", "--trigger", spec]);
        assert_usage_error(&out);
    }
}

#[test]
fn unknown_trigger_type_names_the_type() {
    let out = sched(&["next", "--trigger", r#"{"type": "sometimes"}"#]);
    assert_usage_error(&out);
    assert!(stderr(&out).contains("sometimes"), "{}", stderr(&out));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let spec = r#"{"type": "date", "run_date": "2026-12-24T18:00:00+01:00"}"#;
    let cases: &[&[&str]] = &[
        &["next", "--trigger", spec, "--count", "0"],
        &["next", "--trigger", spec, "--count", "-3"],
        &["next", "--trigger", spec, "--count", "many"],
        &["next", "--trigger", spec, "--now", "2026-03-27T12:00:00"],
        &["next", "--trigger", spec, "--now", "yesterday"],
        &["next", "--trigger", spec, "--previous", "2026-03-27"],
        &["next", "--trigger", spec, "--frobnicate"],
        &["next", "--trigger", spec, "--tz", "Europe/Berlin"],
        &["next", "--trigger", spec, "--crontab", "0 9 * * *"],
        &["next"],
        &["next", "--trigger"],
        &["next", "--cron", "hours=9"],
        &["next", "--cron", "9"],
        &["frobnicate"],
        &[],
    ];
    for args in cases {
        let out = sched(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        assert!(!stderr(&out).trim().is_empty(), "{args:?}");
    }
}

#[test]
fn unknown_zone_in_a_shorthand_is_a_usage_error() {
    let out = sched(&[
        "next",
        "--crontab",
        "0 9 * * *",
        "--tz",
        "Mars/Olympus_Mons",
    ]);
    assert_usage_error(&out);
}

#[test]
fn empty_stdin_is_a_usage_error() {
    assert_usage_error(&sched_with_stdin(&["next", "--trigger", "-"], Some("")));
    assert_usage_error(&sched(&["next", "--trigger", "-"]));
    assert_usage_error(&sched_with_stdin(&["next", "--trigger", "-"], Some("{")));
}

#[test]
fn help_shows_examples() {
    for args in [&["--help"][..], &["next", "--help"]] {
        let out = sched(args);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(text.contains("Examples:"), "{args:?}: {text}");
        assert!(text.contains("--crontab"), "{args:?}: {text}");
    }
    let out = sched(&["next", "--help"]);
    for flag in [
        "--trigger",
        "--now",
        "--previous",
        "--count",
        "--tz",
        "--cron",
    ] {
        assert!(stdout(&out).contains(flag), "{flag} missing from help");
    }
}

/// A shorthand must behave exactly like the JSON spec it stands for: same stdout, same
/// stderr, same exit status (whether or not the trigger kind is built yet).
#[track_caller]
fn assert_same(shorthand: &[&str], spec: &str) {
    let mut a = vec!["next", "--now", NOW, "--count", "7"];
    a.extend_from_slice(shorthand);
    let by_shorthand = sched(&a);
    let by_spec = sched(&["next", "--now", NOW, "--count", "7", "--trigger", spec]);
    assert_eq!(by_shorthand.status.code(), by_spec.status.code());
    assert_eq!(stdout(&by_shorthand), stdout(&by_spec));
    assert_eq!(stderr(&by_shorthand), stderr(&by_spec));
}

#[test]
fn crontab_shorthand_is_the_crontab_spec() {
    assert_same(
        &[
            "--crontab",
            "*/15 9-17 * * mon-fri",
            "--tz",
            "Europe/Berlin",
        ],
        r#"{"type":"crontab","expr":"*/15 9-17 * * mon-fri","timezone":"Europe/Berlin"}"#,
    );
    assert_same(
        &["--crontab", "0 9 * * *"],
        r#"{"type":"crontab","expr":"0 9 * * *","timezone":"UTC"}"#,
    );
}

#[test]
fn cron_shorthand_is_the_cron_spec() {
    assert_same(
        &[
            "--cron",
            "day_of_week=mon-fri,hour=9,minute=0,30",
            "--tz",
            "America/New_York",
        ],
        r#"{"type":"cron","day_of_week":"mon-fri","hour":"9","minute":"0,30","timezone":"America/New_York"}"#,
    );
}

#[test]
fn stdin_spec_is_the_argument_spec() {
    let spec = r#"{"type":"crontab","expr":"0 9 * * mon-fri","timezone":"Europe/Berlin"}"#;
    let from_stdin = sched_with_stdin(&["next", "--now", NOW, "--trigger", "-"], Some(spec));
    let from_arg = sched(&["next", "--now", NOW, "--trigger", spec]);
    assert_eq!(from_stdin.status.code(), from_arg.status.code());
    assert_eq!(stdout(&from_stdin), stdout(&from_arg));
    assert_eq!(stderr(&from_stdin), stderr(&from_arg));
}

// The tests below need the trigger kinds themselves.

#[test]
fn crontab_prints_five_times_by_default() {
    let out = sched(&[
        "next",
        "--crontab",
        "*/15 9-17 * * mon-fri",
        "--tz",
        "Europe/Berlin",
        "--now",
        "2026-03-27T15:20:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "2026-03-27T16:30:00+01:00\n2026-03-27T16:45:00+01:00\n2026-03-27T17:00:00+01:00\n\
         2026-03-27T17:15:00+01:00\n2026-03-27T17:30:00+01:00\n"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn exhausted_trigger_prints_fewer_lines() {
    let spec =
        r#"{"type": "date", "run_date": "2026-12-24T18:00:00+01:00", "timezone": "Europe/Berlin"}"#;
    let out = sched(&["next", "--trigger", spec, "--now", NOW, "--count", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2026-12-24T18:00:00+01:00\n");

    // With a previous fire time the date trigger is finished: no line at all, still exit 0.
    let out = sched(&[
        "next",
        "--trigger",
        spec,
        "--now",
        NOW,
        "--previous",
        "2026-12-24T18:00:00+01:00",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn cron_prints_in_the_zone_offset() {
    let out = sched(&[
        "next",
        "--cron",
        "day_of_week=mon-fri,hour=9",
        "--tz",
        "Europe/Berlin",
        "--now",
        "2026-03-27T12:00:00Z",
        "--count",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Friday 27 March is past 09:00; Berlin moves to summer time on Sunday 29 March.
    assert_eq!(
        stdout(&out),
        "2026-03-30T09:00:00+02:00\n2026-03-31T09:00:00+02:00\n"
    );
    for line in stdout(&out).lines() {
        DateTime::parse_from_rfc3339(line).expect("RFC 3339");
    }
}
