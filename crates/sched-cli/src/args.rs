//! Command-line arguments (clap derive). Everything the user types is checked here or in
//! [`crate::next`]; nothing in this module prints or exits.

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

/// The `sched` command.
#[derive(Debug, Parser)]
#[command(
    name = "sched",
    version,
    about = "Preview when sched triggers fire.",
    long_about = "Preview when sched triggers fire.\n\n\
        A trigger is given as its JSON spec (the format stored with every job, see \
        docs/triggers.md) or through a shorthand. Times are printed as RFC 3339, one per line, \
        in the offset of the trigger's time zone.",
    after_help = "Examples:\n  \
        sched next --crontab '*/15 9-17 * * mon-fri' --tz Europe/Berlin\n  \
        sched next --trigger '{\"type\":\"cron\",\"day_of_week\":\"mon-fri\",\"hour\":9,\"timezone\":\"Europe/Berlin\"}'\n  \
        sched next --trigger - --now 2026-03-27T12:00:00Z --count 3 < spec.json"
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the next fire times of a trigger, one RFC 3339 time per line.
    #[command(
        long_about = "Print the next fire times of a trigger, one RFC 3339 time per line.\n\n\
            The first time is the trigger's answer for (--previous, --now); every later one \
            is its answer when the time just printed is both the previous fire time and the \
            current time, which is what the scheduler does when a job runs on time. A \
            trigger that runs out prints fewer lines, possibly none, and still exits 0. An \
            invalid spec or argument is reported on stderr with exit status 2.",
        after_help = "Examples:\n  \
            # Every 15 minutes in Berlin working hours, Monday to Friday (crontab syntax)\n  \
            sched next --crontab '*/15 9-17 * * mon-fri' --tz Europe/Berlin\n\n  \
            # APScheduler-style cron fields: 09:30 on weekdays, New York time\n  \
            sched next --cron 'day_of_week=mon-fri,hour=9,minute=30' --tz America/New_York\n\n  \
            # Any JSON spec, from a fixed point in time\n  \
            sched next --trigger '{\"type\":\"interval\",\"hours\":6,\"start_date\":\"2026-01-01T00:00:00Z\"}' \\\n    \
            --now 2026-03-27T12:00:00Z --count 3\n\n  \
            # The spec from standard input\n  \
            echo '{\"type\":\"date\",\"run_date\":\"2026-12-24T18:00:00+01:00\"}' | sched next --trigger -"
    )]
    Next(NextArgs),
}

/// Arguments of `sched next`.
#[derive(Debug, Args)]
pub(crate) struct NextArgs {
    /// Where the trigger comes from (exactly one).
    #[command(flatten)]
    pub(crate) source: TriggerSource,

    /// Time zone of a --crontab or --cron shorthand (an IANA name such as Europe/Berlin).
    #[arg(
        long,
        value_name = "ZONE",
        default_value = "UTC",
        conflicts_with = "trigger"
    )]
    pub(crate) tz: String,

    /// The current time, RFC 3339 with an offset [default: the system clock].
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub(crate) now: Option<DateTime<Utc>>,

    /// The previous fire time, RFC 3339 with an offset [default: none, the first fire].
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub(crate) previous: Option<DateTime<Utc>>,

    /// How many fire times to print (at least 1).
    #[arg(long, value_name = "N", default_value = "5", value_parser = parse_count)]
    pub(crate) count: u64,
}

/// The trigger, as a JSON spec or a shorthand.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct TriggerSource {
    /// The trigger's JSON spec, or `-` to read it from standard input.
    #[arg(long, value_name = "JSON")]
    pub(crate) trigger: Option<String>,

    /// A crontab expression: minute, hour, day of month, month, day of week
    /// ("*/15 9-17 * * mon-fri"); builds a `crontab` spec in the --tz zone.
    #[arg(long, value_name = "EXPR")]
    pub(crate) crontab: Option<String>,

    /// APScheduler-style cron fields as `field=value` pairs separated by commas
    /// ("day_of_week=mon-fri,hour=9,minute=0,30" sets minute to "0,30"); builds a `cron`
    /// spec in the --tz zone. Fields: year, month, day, week, day_of_week, hour, minute,
    /// second.
    #[arg(long, value_name = "FIELDS")]
    pub(crate) cron: Option<String>,
}

/// Parses an RFC 3339 timestamp; one without an offset is rejected.
pub(crate) fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "{e}: expected an RFC 3339 time with an offset, such as 2026-03-27T09:00:00+01:00 or 2026-03-27T08:00:00Z"
            )
        })
}

/// Parses `--count`: a whole number, at least 1.
pub(crate) fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("the count must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}: expected a whole number, at least 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn instants_need_an_offset() {
        assert!(parse_instant("2026-03-27T09:00:00").is_err());
        assert!(parse_instant("2026-03-27 09:00").is_err());
        assert!(parse_instant("").is_err());
        let t = parse_instant("2026-03-27T09:00:00+01:00").expect("valid");
        assert_eq!(t, parse_instant("2026-03-27T08:00:00Z").expect("valid"));
    }

    #[test]
    fn count_is_positive() {
        assert!(parse_count("0").is_err());
        assert!(parse_count("-1").is_err());
        assert!(parse_count("x").is_err());
        assert_eq!(parse_count("12"), Ok(12));
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sched").chain(args.iter().copied()))
    }

    #[test]
    fn exactly_one_trigger_source() {
        assert!(parse(&["next"]).is_err());
        assert!(parse(&["next", "--trigger", "{}", "--crontab", "* * * * *"]).is_err());
        assert!(parse(&["next", "--crontab", "* * * * *", "--cron", "hour=1"]).is_err());
        assert!(parse(&["next", "--crontab", "* * * * *"]).is_ok());
    }

    #[test]
    fn tz_goes_with_shorthands_only() {
        assert!(parse(&["next", "--trigger", "{}", "--tz", "Europe/Berlin"]).is_err());
        let cli = parse(&["next", "--cron", "hour=9"]).expect("valid");
        let Command::Next(args) = cli.command;
        assert_eq!(args.tz, "UTC");
        assert_eq!(args.count, 5);
        assert_eq!(args.now, None);
        assert_eq!(args.previous, None);
    }

    #[test]
    fn usage_errors_exit_with_status_2() {
        for args in [
            &["next", "--count", "0", "--crontab", "* * * * *"][..],
            &[
                "next",
                "--now",
                "2026-01-01T00:00:00",
                "--crontab",
                "* * * * *",
            ],
            &["next", "--frobnicate", "--crontab", "* * * * *"],
            &["next"],
            &[],
        ] {
            let err = parse(args).expect_err("usage error");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
