//! `sched next`: build a trigger from its spec and print its next fire times.
//!
//! The iteration rule is the scheduler's (and the conformance vectors'): the first time is
//! `next_fire_time(previous, now)`, every later one `next_fire_time(t, t)` with `t` the time
//! just produced. Everything that can be wrong with the input is checked before the first
//! line is written, so an error never leaves partial output on stdout.

use std::fmt;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use sched::TriggerError;
use sched::trigger::{AnyTrigger, CronTrigger, Trigger};
use serde_json::{Map, Value, json};

use crate::args::NextArgs;

/// Why `sched next` failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The trigger spec is invalid.
    Spec(TriggerError),
    /// An argument is invalid (a shorthand that does not parse, unreadable stdin).
    Argument(String),
    /// Writing the output failed (other than the reader going away).
    Output(io::Error),
}

impl CliError {
    /// The process exit status: 2 for bad input, 1 for a failure to write.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Spec(_) | CliError::Argument(_) => ExitCode::from(2),
            CliError::Output(_) => ExitCode::from(1),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Spec(e) => write!(f, "{e}"),
            CliError::Argument(msg) => f.write_str(msg),
            CliError::Output(e) => write!(f, "cannot write the output: {e}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Spec(e) => Some(e),
            CliError::Argument(_) => None,
            CliError::Output(e) => Some(e),
        }
    }
}

/// Runs `sched next`: reads the spec (from `stdin` for `--trigger -`), builds the trigger and
/// writes up to `--count` fire times to `out`, one per line.
///
/// A closed pipe on `out` (`sched next ... | head -1`) ends the output quietly.
pub(crate) fn run(
    args: &NextArgs,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let spec = spec_value(args, stdin)?;
    let trigger = AnyTrigger::from_value(&spec).map_err(CliError::Spec)?;
    let now = args.now.unwrap_or_else(Utc::now);
    match write_times(&trigger, args.previous, now, args.count, out) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Output),
    }
}

/// The JSON spec the arguments describe.
pub(crate) fn spec_value(args: &NextArgs, stdin: &mut dyn Read) -> Result<Value, CliError> {
    let source = &args.source;
    if let Some(text) = &source.trigger {
        let text = if text.trim() == "-" {
            let mut buf = String::new();
            stdin.read_to_string(&mut buf).map_err(|e| {
                CliError::Argument(format!("cannot read the trigger spec from stdin: {e}"))
            })?;
            buf
        } else {
            text.clone()
        };
        if text.trim().is_empty() {
            return Err(CliError::Argument(
                "the trigger spec is empty (expected a JSON object such as {\"type\": \"cron\", \"hour\": 9, \"timezone\": \"UTC\"})"
                    .to_owned(),
            ));
        }
        return serde_json::from_str(&text).map_err(|e| {
            CliError::Spec(TriggerError::Malformed {
                path: "$".into(),
                reason: format!("not valid JSON: {e}"),
            })
        });
    }
    if let Some(expr) = &source.crontab {
        return Ok(crontab_spec(expr, &args.tz));
    }
    if let Some(fields) = &source.cron {
        return cron_spec(fields, &args.tz).map_err(CliError::Argument);
    }
    // clap's argument group makes one source required; keep a real error all the same.
    Err(CliError::Argument(
        "no trigger given: use --trigger, --crontab or --cron".to_owned(),
    ))
}

/// The `crontab` spec for `--crontab EXPR --tz ZONE`.
pub(crate) fn crontab_spec(expr: &str, tz: &str) -> Value {
    json!({"type": "crontab", "expr": expr, "timezone": tz})
}

/// The `cron` spec for `--cron FIELDS --tz ZONE`.
///
/// `FIELDS` is `field=value` pairs separated by commas. A comma-separated piece without `=`
/// continues the previous value, so `hour=9,17,minute=0` sets hour to `"9,17"` (cron values
/// never contain `=`, so this reading is unambiguous). Values are passed on as strings and
/// checked by the trigger itself.
pub(crate) fn cron_spec(fields: &str, tz: &str) -> Result<Value, String> {
    let mut map = Map::new();
    map.insert("type".into(), Value::String("cron".into()));
    let mut current: Option<(String, String)> = None;
    for piece in fields.split(',') {
        match piece.split_once('=') {
            Some((key, value)) => {
                if let Some((k, v)) = current.take() {
                    map.insert(k, Value::String(v));
                }
                let key = key.trim();
                if !CronTrigger::FIELDS.contains(&key) {
                    return Err(format!(
                        "invalid --cron {fields:?}: unknown field {key:?} (expected one of {})",
                        CronTrigger::FIELDS.join(", ")
                    ));
                }
                if map.contains_key(key) {
                    return Err(format!(
                        "invalid --cron {fields:?}: field {key} is given twice"
                    ));
                }
                current = Some((key.to_owned(), value.trim().to_owned()));
            }
            None => match current.as_mut() {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(piece.trim());
                }
                None => {
                    return Err(format!(
                        "invalid --cron {fields:?}: expected field=value pairs such as hour=9,minute=30"
                    ));
                }
            },
        }
    }
    if let Some((k, v)) = current {
        map.insert(k, Value::String(v));
    }
    map.insert("timezone".into(), Value::String(tz.to_owned()));
    Ok(Value::Object(map))
}

/// The fire times of `trigger` by the iteration rule, at most `count` of them.
pub(crate) fn fire_times<'a>(
    trigger: &'a dyn Trigger,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    count: u64,
) -> impl Iterator<Item = DateTime<Utc>> + 'a {
    let mut state = Some((previous, now));
    std::iter::from_fn(move || {
        let (previous, now) = state.take()?;
        let t = trigger.next_fire_time(previous, now)?;
        state = Some((Some(t), t));
        Some(t)
    })
    .take(usize::try_from(count).unwrap_or(usize::MAX))
}

/// Writes the fire times, each in the trigger's zone offset, one per line.
pub(crate) fn write_times(
    trigger: &dyn Trigger,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    count: u64,
    out: &mut dyn Write,
) -> io::Result<()> {
    let zone = trigger.zone();
    let mut out = io::BufWriter::new(out);
    for t in fire_times(trigger, previous, now, count) {
        writeln!(out, "{}", zone.format(t))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{Duration, TimeZone};
    use sched::Zone;

    use super::*;
    use crate::args::TriggerSource;

    /// One call to `next_fire_time`: (previous, now).
    type Call = (Option<DateTime<Utc>>, DateTime<Utc>);

    /// A trigger that fires every `step` from a start, `limit` times, and records its calls.
    #[derive(Debug)]
    struct Steps {
        start: DateTime<Utc>,
        step: Duration,
        limit: usize,
        zone: Zone,
        calls: Mutex<Vec<Call>>,
    }

    impl Steps {
        fn new(limit: usize, zone: Zone) -> Steps {
            Steps {
                start: Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap(),
                step: Duration::hours(1),
                limit,
                zone,
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl Trigger for Steps {
        fn next_fire_time(
            &self,
            previous: Option<DateTime<Utc>>,
            now: DateTime<Utc>,
        ) -> Option<DateTime<Utc>> {
            let mut calls = self.calls.lock().unwrap();
            calls.push((previous, now));
            let next = match previous {
                None => self.start.max(now),
                Some(p) => p + self.step,
            };
            (calls.len() <= self.limit).then_some(next)
        }

        fn zone(&self) -> Zone {
            self.zone
        }
    }

    fn utc(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 29, h, 0, 0).unwrap()
    }

    #[test]
    fn follows_the_iteration_rule() {
        let t = Steps::new(10, Zone::UTC);
        let now = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        let got: Vec<_> = fire_times(&t, Some(utc(7)), now, 3).collect();
        assert_eq!(got, [utc(8), utc(9), utc(10)]);
        let calls = t.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [
                (Some(utc(7)), now),
                (Some(utc(8)), utc(8)),
                (Some(utc(9)), utc(9))
            ]
        );
    }

    #[test]
    fn stops_when_the_trigger_is_exhausted() {
        let t = Steps::new(2, Zone::UTC);
        let got: Vec<_> = fire_times(&t, None, utc(0), 5).collect();
        assert_eq!(got, [utc(0), utc(1)]);
        // No call after the first `None`.
        assert_eq!(t.calls.lock().unwrap().len(), 3);

        let none = Steps::new(0, Zone::UTC);
        assert_eq!(fire_times(&none, None, utc(0), 5).count(), 0);
    }

    #[test]
    fn writes_in_the_zone_offset() {
        let berlin = Zone::from_name("Europe/Berlin", "timezone").unwrap();
        let t = Steps::new(10, berlin);
        let mut out = Vec::new();
        write_times(&t, None, utc(0), 3, &mut out).unwrap();
        // Berlin springs forward at 01:00 UTC on 2026-03-29.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-03-29T01:00:00+01:00\n2026-03-29T03:00:00+02:00\n2026-03-29T04:00:00+02:00\n"
        );
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
        }
        let t = Steps::new(10, Zone::UTC);
        let err = write_times(&t, None, utc(0), 3, &mut Closed).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn crontab_shorthand() {
        assert_eq!(
            crontab_spec("*/15 9-17 * * mon-fri", "Europe/Berlin"),
            json!({"type": "crontab", "expr": "*/15 9-17 * * mon-fri", "timezone": "Europe/Berlin"})
        );
    }

    #[test]
    fn cron_shorthand() {
        assert_eq!(
            cron_spec("day_of_week=mon-fri, hour=9,17,minute=0", "UTC").unwrap(),
            json!({"type": "cron", "day_of_week": "mon-fri", "hour": "9,17", "minute": "0", "timezone": "UTC"})
        );
        assert_eq!(
            cron_spec("day=last fri", "Asia/Tokyo").unwrap(),
            json!({"type": "cron", "day": "last fri", "timezone": "Asia/Tokyo"})
        );
        assert!(cron_spec("9", "UTC").is_err());
        assert!(cron_spec("hours=9", "UTC").is_err());
        assert!(cron_spec("timezone=UTC", "UTC").is_err());
        assert!(cron_spec("hour=1,hour=2", "UTC").is_err());
    }

    fn args(source: TriggerSource) -> NextArgs {
        NextArgs {
            source,
            tz: "UTC".into(),
            now: None,
            previous: None,
            count: 5,
        }
    }

    #[test]
    fn spec_from_stdin() {
        let a = args(TriggerSource {
            trigger: Some("-".into()),
            crontab: None,
            cron: None,
        });
        let spec = spec_value(&a, &mut &br#"{"type": "date"}"#[..]).unwrap();
        assert_eq!(spec, json!({"type": "date"}));
        let err = spec_value(&a, &mut &b""[..]).unwrap_err();
        assert!(matches!(err, CliError::Argument(_)), "{err:?}");
        let err = spec_value(&a, &mut &b"{nope"[..]).unwrap_err();
        assert!(matches!(err, CliError::Spec(_)), "{err:?}");
    }

    #[test]
    fn bad_input_exits_2_before_any_output() {
        let a = args(TriggerSource {
            trigger: Some(r#"{"type": "sometimes"}"#.into()),
            crontab: None,
            cron: None,
        });
        let mut out = Vec::new();
        let err = run(&a, &mut io::empty(), &mut out).unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::from(2));
        assert!(err.to_string().contains("sometimes"), "{err}");
        assert!(out.is_empty());
    }
}
