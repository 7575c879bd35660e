//! Errors raised while building a trigger from a spec or from Rust code.

use thiserror::Error;

/// Why a trigger spec (or a trigger built in code) is invalid.
///
/// Every variant is **permanent**: the same input always fails the same way, so retrying is
/// pointless. Each message names what is wrong: the field (as a path such as
/// `triggers[1].day_of_week` inside `and`/`or`), the offending text and, for expressions,
/// the column (1-based, counted in characters) where the problem starts.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TriggerError {
    /// The input is not well-formed JSON, or not a JSON object where one is needed.
    #[error("invalid trigger spec at {path}: {reason}")]
    Malformed {
        /// Where in the spec (`$` for the top level).
        path: String,
        /// What was found instead.
        reason: String,
    },
    /// The `type` key names no known trigger type.
    #[error(
        "unknown trigger type {value:?} at {path} (expected one of date, interval, cron, crontab, calendarinterval, and, or)"
    )]
    UnknownType {
        /// Where in the spec.
        path: String,
        /// The type name given.
        value: String,
    },
    /// A required key is absent.
    #[error("missing field {field} in {kind} trigger")]
    MissingField {
        /// The trigger type.
        kind: &'static str,
        /// The missing key, as a path.
        field: String,
    },
    /// A key that this trigger type does not have.
    #[error("unknown field {field} in {kind} trigger")]
    UnknownField {
        /// The trigger type.
        kind: &'static str,
        /// The unexpected key, as a path.
        field: String,
    },
    /// A value of the wrong JSON type or outside its allowed range.
    #[error("invalid {field} {value}: {reason}")]
    InvalidValue {
        /// The key, as a path.
        field: String,
        /// The offending value as written (JSON text).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A cron or crontab expression that does not parse or names impossible values.
    #[error("invalid {field} {text:?}: {reason} (at column {column})")]
    InvalidExpression {
        /// The cron field (`day_of_week`, `minute`, ...) or `expr`, as a path.
        field: String,
        /// The whole expression text of that field.
        text: String,
        /// 1-based character column in `text` where the problem starts.
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// A time zone name that is not in the bundled IANA database.
    #[error("unknown time zone {name:?} in {field}")]
    UnknownTimeZone {
        /// The key, as a path.
        field: String,
        /// The name given.
        name: String,
    },
    /// A timestamp or date that does not parse (RFC 3339 with an explicit offset is required).
    #[error("invalid {field} {text:?}: {reason}")]
    InvalidTimestamp {
        /// The key, as a path.
        field: String,
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl TriggerError {
    /// Always `true`: an invalid spec stays invalid. Present so that callers handling
    /// several error types can ask every one the same question.
    pub fn is_permanent(&self) -> bool {
        true
    }
}
