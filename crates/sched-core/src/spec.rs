//! Reading the JSON trigger spec: one place that knows how keys are looked up, how unknown
//! keys are rejected and how values are checked, so every trigger type reports errors alike.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::{TriggerError, Zone};

/// A spec object being read by one trigger type. Keys are taken one by one; `finish` rejects
/// whatever is left.
pub(crate) struct SpecReader {
    kind: &'static str,
    prefix: String,
    map: Map<String, Value>,
}

/// The path of `key` under `prefix` (`"triggers[1]."` + `"hour"`).
pub(crate) fn join(prefix: &str, key: &str) -> String {
    format!("{prefix}{key}")
}

/// A JSON value as it was written, for error messages.
pub(crate) fn show(v: &Value) -> String {
    v.to_string()
}

impl SpecReader {
    /// Starts reading `map` (the `type` key already removed) for trigger type `kind`;
    /// `prefix` is prepended to every key in error messages (`""` at the top level).
    pub(crate) fn new(kind: &'static str, prefix: &str, map: Map<String, Value>) -> Self {
        SpecReader {
            kind,
            prefix: prefix.to_owned(),
            map,
        }
    }

    /// The trigger type being read.
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    /// The full path of `key`.
    pub(crate) fn path(&self, key: &str) -> String {
        join(&self.prefix, key)
    }

    /// The path prefix for children of `key` (`"triggers"` → `"triggers["`).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Removes and returns `key`, if present. A JSON `null` counts as absent.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        match self.map.remove(key) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    /// Like [`take`](Self::take), but the key is required.
    pub(crate) fn require(&mut self, key: &str) -> Result<Value, TriggerError> {
        self.take(key).ok_or_else(|| TriggerError::MissingField {
            kind: self.kind,
            field: self.path(key),
        })
    }

    /// An error about the value of `key`.
    pub(crate) fn invalid(
        &self,
        key: &str,
        value: &Value,
        reason: impl Into<String>,
    ) -> TriggerError {
        TriggerError::InvalidValue {
            field: self.path(key),
            value: show(value),
            reason: reason.into(),
        }
    }

    /// A string value.
    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, TriggerError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.invalid(key, &v, "expected a string")),
        }
    }

    /// A non-negative, finite number (integer or fraction).
    pub(crate) fn non_negative(&mut self, key: &str) -> Result<Option<f64>, TriggerError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                Some(x) if x.is_finite() => Err(self.invalid(key, &v, "must not be negative")),
                Some(_) => Err(self.invalid(key, &v, "must be a finite number")),
                None => Err(self.invalid(key, &v, "expected a number")),
            },
        }
    }

    /// A whole number in `min..=max`.
    pub(crate) fn integer(
        &mut self,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, TriggerError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => {
                let n = match &v {
                    Value::Number(n) => n.as_i64().or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                            .map(|f| f as i64)
                    }),
                    _ => None,
                };
                match n {
                    Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                    Some(_) => {
                        Err(self.invalid(key, &v, format!("must be between {min} and {max}")))
                    }
                    None => Err(self.invalid(key, &v, "expected a whole number")),
                }
            }
        }
    }

    /// A cron field: a string, or a non-negative integer (written back as its decimal text).
    pub(crate) fn cron_field(&mut self, key: &str) -> Result<Option<String>, TriggerError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(Some(n.to_string())),
            Some(v) => {
                Err(self.invalid(key, &v, "expected a string or a non-negative whole number"))
            }
        }
    }

    /// An RFC 3339 timestamp with an explicit offset.
    pub(crate) fn timestamp(
        &mut self,
        key: &str,
    ) -> Result<Option<DateTime<FixedOffset>>, TriggerError> {
        match self.string(key)? {
            None => Ok(None),
            Some(text) => parse_timestamp(&text, &self.path(key)).map(Some),
        }
    }

    /// A calendar date: `YYYY-MM-DD`, or an RFC 3339 timestamp read as its date in `zone`.
    pub(crate) fn date(
        &mut self,
        key: &str,
        zone: Zone,
    ) -> Result<Option<NaiveDate>, TriggerError> {
        match self.string(key)? {
            None => Ok(None),
            Some(text) => {
                let field = self.path(key);
                if let Ok(d) = NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                    && text.len() == 10
                {
                    return Ok(Some(d));
                }
                let ts =
                    parse_timestamp(&text, &field).map_err(|_| TriggerError::InvalidTimestamp {
                        field: field.clone(),
                        text: text.clone(),
                        reason:
                            "expected a date (YYYY-MM-DD) or an RFC 3339 timestamp with an offset"
                                .into(),
                    })?;
                Ok(Some(zone.local(ts.with_timezone(&Utc)).date()))
            }
        }
    }

    /// An IANA zone name.
    pub(crate) fn zone(&mut self, key: &str) -> Result<Option<Zone>, TriggerError> {
        match self.string(key)? {
            None => Ok(None),
            Some(name) => Zone::from_name(&name, &self.path(key)).map(Some),
        }
    }

    /// Fails on the first key nobody took.
    pub(crate) fn finish(self) -> Result<(), TriggerError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(TriggerError::UnknownField {
                kind: self.kind,
                field: join(&self.prefix, k),
            }),
        }
    }
}

/// Parses an RFC 3339 timestamp that carries an explicit offset (`Z` allowed).
pub(crate) fn parse_timestamp(
    text: &str,
    field: &str,
) -> Result<DateTime<FixedOffset>, TriggerError> {
    DateTime::parse_from_rfc3339(text.trim()).map_err(|e| TriggerError::InvalidTimestamp {
        field: field.to_owned(),
        text: text.to_owned(),
        reason: format!(
            "expected an RFC 3339 timestamp with an offset, such as 2024-05-01T09:00:00+02:00 ({e})"
        ),
    })
}

/// Writes an instant as RFC 3339 in `zone`'s offset.
pub(crate) fn timestamp_value(zone: Zone, t: DateTime<Utc>) -> Value {
    Value::String(zone.format(t))
}

/// A number for the spec: whole numbers as integers, others as floats.
pub(crate) fn number_value(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}
