//! Configuration as data, APScheduler's second and third ways: a [`Config`] read from TOML or
//! JSON, or from a flat map of `sched.`-prefixed string keys (and environment variables).
//!
//! Every form goes through one reader, so a value means the same and a bad one is reported
//! the same way, naming the key as the source spelled it:
//!
//! ```text
//! invalid job_defaults.max_instances 0: expected a whole number ≥ 1           (TOML, JSON)
//! invalid sched.job_defaults.max_instances "zero": expected a whole number ≥ 1 (flat map)
//! invalid SCHED_JOB_DEFAULTS__MAX_INSTANCES "zero": expected a whole number ≥ 1 (environment)
//! ```
//!
//! The keys:
//!
//! | key | value | default |
//! | --- | --- | --- |
//! | `timezone` | IANA zone name (`"Europe/Berlin"`, `"UTC"`): the zone of job tables | UTC |
//! | `job_defaults.misfire_grace_time` | seconds ≥ 0, or `"none"` (run however late) | 1 |
//! | `job_defaults.coalesce` | `"earliest"`, `"latest"`, `"all"`, or a boolean (true = latest, false = all) | latest |
//! | `job_defaults.max_instances` | whole number ≥ 1 | 1 |
//! | `stores.<name>.type` | a store type: `"memory"`, or one registered with [`SchedulerBuilder::store_type`] | |
//! | `stores.<name>.<option>` | the store type's options | |
//! | `executors.<name>.type` | `"tokio"` or `"blocking"` | |
//! | `executors.<name>.max_workers` | whole number ≥ 1 (blocking only) | 10 |
//!
//! Unknown keys are errors (a typo never passes silently). A store or executor named
//! `default` is added when the configuration has none, as [`SchedulerBuilder::build`] does.
//!
//! # The flat form and the environment
//! `sched.job_defaults.coalesce = "false"`: the same keys under the `sched.` prefix, every
//! value a string (numbers and booleans are parsed). Keys without the prefix are ignored, so
//! a whole application's settings can be passed in.
//!
//! Environment variables map onto the same keys: `SCHED_` + the key's parts in upper case,
//! joined by a double underscore (`SCHED_JOB_DEFAULTS__MAX_INSTANCES=3`,
//! `SCHED_EXECUTORS__POOL__TYPE=blocking`, `SCHED_TIMEZONE=UTC`). A single underscore stays
//! inside a part (`JOB_DEFAULTS`, `MAX_WORKERS`): no key has a double underscore, so the
//! mapping is unambiguous. Parts are read in lower case, so store and executor names taken
//! from the environment are lower case. Only `SCHED_TIMEZONE` and `SCHED_` variables holding
//! a `__` are read; others (`SCHED_CONFORMANCE_FILTER`) are left alone.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use sched_core::Zone;
use sched_core::job::{Coalesce, DEFAULT, JobDefaults};
use sched_stores::{BoxError, BoxJobStore, MemoryStore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::scheduler::{Executors, SchedulerState};
use crate::{Executor, Scheduler, SchedulerBuilder, SchedulerError};

/// Stores by name, in order.
type NamedStores = Vec<(String, BoxJobStore)>;

/// The prefix of the flat form's keys.
pub const PREFIX: &str = "sched.";
/// The prefix of environment variables.
pub const ENV_PREFIX: &str = "SCHED_";
/// The worker limit of a `blocking` executor that does not set `max_workers` (APScheduler's
/// thread pool default).
pub const DEFAULT_MAX_WORKERS: usize = 10;

/// Why a configuration was refused. Permanent: the same configuration fails the same way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is not what its key takes.
    #[error("invalid {key} {value}: expected {expected}")]
    Invalid {
        /// The key as the source spelled it (`sched.job_defaults.max_instances`).
        key: String,
        /// The value as written (strings quoted).
        value: String,
        /// What the key takes.
        expected: String,
    },
    /// A key the configuration does not have.
    #[error("unknown key {key}: expected one of {expected}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The keys allowed there.
        expected: String,
    },
    /// A required key is missing (a store or executor without a `type`).
    #[error("missing {key}")]
    Missing {
        /// The key.
        key: String,
    },
    /// The text is not valid TOML or JSON.
    #[error("malformed {format} configuration: {message}")]
    Malformed {
        /// `TOML` or `JSON`.
        format: &'static str,
        /// The parser's message, with the position.
        message: String,
    },
    /// A store type's factory could not build the store.
    #[error("{key}: {source}")]
    Store {
        /// The store's key (`stores.main`).
        key: String,
        /// What the factory said.
        #[source]
        source: BoxError,
    },
}

impl ConfigError {
    /// The key the error is about, as the source spelled it.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. }
            | ConfigError::UnknownKey { key, .. }
            | ConfigError::Missing { key }
            | ConfigError::Store { key, .. } => Some(key),
            ConfigError::Malformed { .. } => None,
        }
    }
}

/// How keys are spelled in errors: as in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Style {
    /// `prefix` + parts joined by dots.
    Dotted(String),
    /// `SCHED_` + upper-case parts joined by `__`.
    Env,
}

/// Where a value sits, for error messages.
#[derive(Clone, Debug)]
struct KeyPath {
    style: Arc<Style>,
    parts: Vec<String>,
}

impl KeyPath {
    fn root(style: Style) -> KeyPath {
        KeyPath {
            style: Arc::new(style),
            parts: Vec::new(),
        }
    }

    fn child(&self, part: &str) -> KeyPath {
        let mut parts = self.parts.clone();
        parts.push(part.to_owned());
        KeyPath {
            style: self.style.clone(),
            parts,
        }
    }

    fn render(&self) -> String {
        match &*self.style {
            Style::Dotted(prefix) => format!("{prefix}{}", self.parts.join(".")),
            Style::Env => format!("{ENV_PREFIX}{}", self.parts.join("__").to_uppercase()),
        }
    }

    fn invalid(&self, value: &Value, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: self.render(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    fn unknown(&self, expected: &[&str]) -> ConfigError {
        ConfigError::UnknownKey {
            key: self.render(),
            expected: if expected.is_empty() {
                "none (this takes no options)".to_owned()
            } else {
                expected.join(", ")
            },
        }
    }
}

/// A scheduler's configuration as data: time zone, job defaults, and the stores and
/// executors by type name with their options (APScheduler's `configure` dictionary).
///
/// Read it from TOML or JSON, from a flat `sched.` map or the environment, or build it in
/// Rust; give it to [`SchedulerBuilder::configure`] or [`Scheduler::configure`]. It
/// implements serde's `Serialize` and `Deserialize` in the TOML/JSON shape, so it can sit
/// inside an application's own configuration struct.
///
/// ```
/// use sched_runtime::config::Config;
/// use sched_runtime::Scheduler;
///
/// let config = Config::from_toml(r#"
///     timezone = "Europe/Berlin"
///
///     [stores.default]
///     type = "memory"
///
///     [executors.default]
///     type = "tokio"
///
///     [executors.pool]
///     type = "blocking"
///     max_workers = 8
///
///     [job_defaults]
///     misfire_grace_time = 30
///     coalesce = "latest"
///     max_instances = 3
/// "#)?;
/// assert_eq!(config.job_defaults.max_instances, 3);
///
/// let scheduler = Scheduler::builder().configure(&config)?.build();
/// assert_eq!(scheduler.zone().name(), "Europe/Berlin");
///
/// // The same as flat string keys, APScheduler's `apscheduler.` style:
/// let flat = Config::from_flat([
///     ("sched.timezone", "Europe/Berlin"),
///     ("sched.stores.default.type", "memory"),
///     ("sched.executors.default.type", "tokio"),
///     ("sched.executors.pool.type", "blocking"),
///     ("sched.executors.pool.max_workers", "8"),
///     ("sched.job_defaults.misfire_grace_time", "30"),
///     ("sched.job_defaults.coalesce", "latest"),
///     ("sched.job_defaults.max_instances", "3"),
/// ])?;
/// assert_eq!(flat, config);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The zone of job tables; `None`: UTC.
    pub timezone: Option<Zone>,
    /// The options of jobs that do not set their own.
    pub job_defaults: JobDefaults,
    /// Stores by name.
    pub stores: BTreeMap<String, StoreConfig>,
    /// Executors by name.
    pub executors: BTreeMap<String, ExecutorConfig>,
}

impl Config {
    /// An empty configuration: every default.
    pub fn new() -> Config {
        Config::default()
    }

    /// Sets the time zone.
    #[must_use]
    pub fn with_timezone(mut self, zone: Zone) -> Config {
        self.timezone = Some(zone);
        self
    }

    /// Sets the job defaults.
    #[must_use]
    pub fn with_job_defaults(mut self, defaults: JobDefaults) -> Config {
        self.job_defaults = defaults;
        self
    }

    /// Adds (or replaces) a store.
    #[must_use]
    pub fn with_store(mut self, name: impl Into<String>, mut store: StoreConfig) -> Config {
        let name = name.into();
        store.options.path = KeyPath::root(Style::Dotted(String::new()))
            .child("stores")
            .child(&name);
        self.stores.insert(name, store);
        self
    }

    /// Adds (or replaces) an executor.
    #[must_use]
    pub fn with_executor(mut self, name: impl Into<String>, executor: ExecutorConfig) -> Config {
        self.executors.insert(name.into(), executor);
        self
    }

    /// Reads a TOML document.
    ///
    /// # Errors
    /// [`ConfigError::Malformed`] for invalid TOML; the others for a bad key or value.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let tree: Value = toml::from_str(text).map_err(|e| ConfigError::Malformed {
            format: "TOML",
            message: e.to_string().trim_end().to_owned(),
        })?;
        Config::from_tree(&tree, &KeyPath::root(Style::Dotted(String::new())))
    }

    /// Reads a JSON document.
    ///
    /// # Errors
    /// As [`from_toml`](Config::from_toml).
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let tree: Value = serde_json::from_str(text).map_err(|e| ConfigError::Malformed {
            format: "JSON",
            message: e.to_string(),
        })?;
        Config::from_tree(&tree, &KeyPath::root(Style::Dotted(String::new())))
    }

    /// Reads the flat form: `sched.`-prefixed keys with string values. Keys without the
    /// prefix are ignored.
    ///
    /// ```
    /// use sched_runtime::config::Config;
    ///
    /// let err = Config::from_flat([("sched.job_defaults.max_instances", "zero")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"invalid sched.job_defaults.max_instances "zero": expected a whole number ≥ 1"#
    /// );
    /// ```
    ///
    /// # Errors
    /// For a bad key or value, naming the key with its prefix.
    pub fn from_flat<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Config, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Config::from_prefixed(PREFIX, pairs)
    }

    /// The flat form with another prefix (APScheduler's `configure(gconfig, prefix=...)`).
    ///
    /// # Errors
    /// As [`from_flat`](Config::from_flat).
    pub fn from_prefixed<K, V>(
        prefix: &str,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let root = KeyPath::root(Style::Dotted(prefix.to_owned()));
        let mut tree = Map::new();
        for (key, value) in pairs {
            let Some(rest) = key.as_ref().strip_prefix(prefix) else {
                continue;
            };
            let parts: Vec<String> = rest.split('.').map(str::to_owned).collect();
            insert(&mut tree, &root, &parts, value.as_ref())?;
        }
        Config::from_tree(&Value::Object(tree), &root)
    }

    /// Reads the environment of this process (see the [module docs](self) for the mapping).
    ///
    /// # Errors
    /// As [`from_env_vars`](Config::from_env_vars).
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_env_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Reads environment variables given as pairs (`SCHED_JOB_DEFAULTS__MAX_INSTANCES`,
    /// `"3"`); variables that are not the scheduler's are ignored.
    ///
    /// ```
    /// use sched_runtime::config::Config;
    ///
    /// let config = Config::from_env_vars([
    ///     ("SCHED_JOB_DEFAULTS__MAX_INSTANCES", "3"),
    ///     ("SCHED_EXECUTORS__POOL__TYPE", "blocking"),
    ///     ("SCHED_EXECUTORS__POOL__MAX_WORKERS", "20"),
    ///     ("HOME", "/root"),
    /// ])?;
    /// assert_eq!(config.job_defaults.max_instances, 3);
    /// assert!(config.executors.contains_key("pool"));
    /// # Ok::<(), sched_runtime::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// For a bad key or value, naming the variable.
    pub fn from_env_vars<K, V>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let root = KeyPath::root(Style::Env);
        let mut tree = Map::new();
        for (key, value) in vars {
            let Some(rest) = key.as_ref().strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if rest != "TIMEZONE" && !rest.contains("__") {
                continue;
            }
            let parts: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            insert(&mut tree, &root, &parts, value.as_ref())?;
        }
        Config::from_tree(&Value::Object(tree), &root)
    }

    /// The one reader behind every form.
    fn from_tree(tree: &Value, path: &KeyPath) -> Result<Config, ConfigError> {
        let top = table(tree, path)?;
        let mut config = Config::default();
        for (key, value) in top {
            let here = path.child(key);
            match key.as_str() {
                "timezone" => config.timezone = Some(zone(value, &here)?),
                "job_defaults" => config.job_defaults = job_defaults(value, &here)?,
                "stores" => {
                    for (name, store) in table(value, &here)? {
                        let at = here.child(name);
                        config
                            .stores
                            .insert(name.clone(), StoreConfig::read(store, at)?);
                    }
                }
                "executors" => {
                    for (name, executor) in table(value, &here)? {
                        let at = here.child(name);
                        config
                            .executors
                            .insert(name.clone(), ExecutorConfig::read(executor, &at)?);
                    }
                }
                _ => {
                    return Err(here.unknown(&["timezone", "job_defaults", "stores", "executors"]));
                }
            }
        }
        Ok(config)
    }

    /// The TOML/JSON tree of this configuration.
    fn to_tree(&self) -> Value {
        let mut top = Map::new();
        if let Some(zone) = self.timezone {
            top.insert("timezone".into(), Value::String(zone.name()));
        }
        let d = &self.job_defaults;
        let mut defaults = Map::new();
        defaults.insert(
            "misfire_grace_time".into(),
            match d.misfire_grace_time {
                Some(g) => serde_json::json!(g.as_secs_f64()),
                None => Value::String("none".into()),
            },
        );
        let coalesce = match d.coalesce {
            Coalesce::Earliest => "earliest",
            Coalesce::Latest => "latest",
            Coalesce::All => "all",
        };
        defaults.insert("coalesce".into(), Value::String(coalesce.into()));
        defaults.insert("max_instances".into(), Value::from(d.max_instances));
        top.insert("job_defaults".into(), Value::Object(defaults));
        let stores: Map<String, Value> = self
            .stores
            .iter()
            .map(|(name, s)| {
                let mut t = s.options.values.clone();
                t.insert("type".into(), Value::String(s.kind.clone()));
                (name.clone(), Value::Object(t))
            })
            .collect();
        top.insert("stores".into(), Value::Object(stores));
        let executors: Map<String, Value> = self
            .executors
            .iter()
            .map(|(name, e)| {
                let mut t = Map::new();
                match e {
                    ExecutorConfig::Tokio => {
                        t.insert("type".into(), "tokio".into());
                    }
                    ExecutorConfig::Blocking { max_workers } => {
                        t.insert("type".into(), "blocking".into());
                        t.insert("max_workers".into(), Value::from(*max_workers));
                    }
                }
                (name.clone(), Value::Object(t))
            })
            .collect();
        top.insert("executors".into(), Value::Object(executors));
        Value::Object(top)
    }

    /// The stores and executors this configuration describes, built, plus the `default`
    /// ones when it names none.
    fn build_parts(&self, types: &StoreTypes) -> Result<(NamedStores, Executors), ConfigError> {
        let mut stores = Vec::new();
        if !self.stores.contains_key(DEFAULT) {
            stores.push((DEFAULT.to_owned(), BoxJobStore::new(MemoryStore::new())));
        }
        for (name, store) in &self.stores {
            stores.push((name.clone(), types.build(store)?));
        }
        let mut executors: Executors = self
            .executors
            .iter()
            .map(|(name, e)| (name.clone(), e.build()))
            .collect();
        executors
            .entry(DEFAULT.to_owned())
            .or_insert_with(Executor::tokio);
        Ok((stores, executors))
    }
}

impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_tree().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Config {
    /// Reads the TOML/JSON shape; an error names the key and the value.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
        let tree = Value::deserialize(deserializer)?;
        Config::from_tree(&tree, &KeyPath::root(Style::Dotted(String::new())))
            .map_err(serde::de::Error::custom)
    }
}

/// Puts a flat key's string value into the tree.
fn insert(
    tree: &mut Map<String, Value>,
    root: &KeyPath,
    parts: &[String],
    value: &str,
) -> Result<(), ConfigError> {
    let mut here = root.clone();
    let mut node = tree;
    for (i, part) in parts.iter().enumerate() {
        here = here.child(part);
        if part.is_empty() {
            return Err(ConfigError::Invalid {
                key: here.render(),
                value: Value::String(value.to_owned()).to_string(),
                expected: "a key without empty parts".to_owned(),
            });
        }
        if i + 1 == parts.len() {
            if node.get(part).is_some_and(Value::is_object) {
                return Err(here.invalid(
                    &Value::String(value.to_owned()),
                    "a table (other keys are under it), not a value",
                ));
            }
            node.insert(part.clone(), Value::String(value.to_owned()));
            return Ok(());
        }
        let next = node
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(next) = next else {
            let v = next.clone();
            return Err(here.invalid(&v, "a table (other keys are under it), not a value"));
        };
        node = next;
    }
    Ok(())
}

fn table<'a>(value: &'a Value, path: &KeyPath) -> Result<&'a Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| path.invalid(value, "a table"))
}

const WHOLE: &str = "a whole number ≥ 1";

/// A whole number ≥ 1, written as a number or a string.
fn whole_number(value: &Value, path: &KeyPath) -> Result<u64, ConfigError> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.filter(|n| *n >= 1)
        .ok_or_else(|| path.invalid(value, WHOLE))
}

/// A boolean, written as one or as a string (`true`/`false`, `yes`/`no`, `on`/`off`,
/// `1`/`0`, any case), as APScheduler's `asbool`.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "y" | "t" => Some(true),
            "false" | "no" | "off" | "0" | "n" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn zone(value: &Value, path: &KeyPath) -> Result<Zone, ConfigError> {
    value
        .as_str()
        .and_then(|name| Zone::from_name(name.trim(), "timezone").ok())
        .ok_or_else(|| {
            path.invalid(
                value,
                r#"an IANA time zone name such as "Europe/Berlin" or "UTC""#,
            )
        })
}

fn job_defaults(value: &Value, path: &KeyPath) -> Result<JobDefaults, ConfigError> {
    let mut d = JobDefaults::default();
    for (key, v) in table(value, path)? {
        let here = path.child(key);
        match key.as_str() {
            "misfire_grace_time" => d.misfire_grace_time = grace(v, &here)?,
            "coalesce" => d.coalesce = coalesce(v, &here)?,
            "max_instances" => {
                d.max_instances =
                    u32::try_from(whole_number(v, &here)?).map_err(|_| here.invalid(v, WHOLE))?;
            }
            _ => {
                return Err(here.unknown(&["misfire_grace_time", "coalesce", "max_instances"]));
            }
        }
    }
    Ok(d)
}

fn grace(value: &Value, path: &KeyPath) -> Result<Option<Duration>, ConfigError> {
    let secs = match value {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().eq_ignore_ascii_case("none") => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    secs.filter(|s| *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(Some)
        .ok_or_else(|| {
            path.invalid(
                value,
                r#"a number of seconds ≥ 0, or "none" to run however late"#,
            )
        })
}

fn coalesce(value: &Value, path: &KeyPath) -> Result<Coalesce, ConfigError> {
    if let Some(s) = value.as_str() {
        match s.trim().to_ascii_lowercase().as_str() {
            "earliest" => return Ok(Coalesce::Earliest),
            "latest" => return Ok(Coalesce::Latest),
            "all" => return Ok(Coalesce::All),
            _ => {}
        }
    }
    boolean(value).map(Coalesce::from).ok_or_else(|| {
        path.invalid(
            value,
            r#""earliest", "latest", "all", or a boolean (true = latest, false = all)"#,
        )
    })
}

/// The `type` of a store or executor table.
fn type_name(t: &Map<String, Value>, path: &KeyPath) -> Result<String, ConfigError> {
    let here = path.child("type");
    match t.get("type") {
        None => Err(ConfigError::Missing { key: here.render() }),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(v) => Err(here.invalid(v, "a type name")),
    }
}

/// A store by type name, with the type's options (APScheduler's
/// `{"type": "sqlalchemy", "url": ...}`).
///
/// ```
/// use sched_runtime::config::StoreConfig;
///
/// let store = StoreConfig::new("sqlite").option("path", "jobs.db");
/// assert_eq!(store.kind(), "sqlite");
/// assert_eq!(store.options().string("path")?.as_deref(), Some("jobs.db"));
/// # Ok::<(), sched_runtime::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    kind: String,
    options: StoreOptions,
}

impl StoreConfig {
    /// A store of type `kind`, no options.
    pub fn new(kind: impl Into<String>) -> StoreConfig {
        StoreConfig {
            kind: kind.into(),
            options: StoreOptions {
                values: Map::new(),
                path: KeyPath::root(Style::Dotted(String::new())).child("stores"),
            },
        }
    }

    /// Sets an option.
    #[must_use]
    pub fn option(mut self, key: impl Into<String>, value: impl Into<Value>) -> StoreConfig {
        self.options.values.insert(key.into(), value.into());
        self
    }

    /// The type name.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The options (every key but `type`).
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    fn read(value: &Value, path: KeyPath) -> Result<StoreConfig, ConfigError> {
        let t = table(value, &path)?;
        let kind = type_name(t, &path)?;
        let mut values = t.clone();
        values.remove("type");
        Ok(StoreConfig {
            kind,
            options: StoreOptions { values, path },
        })
    }
}

/// The options of one store in a configuration, with readers that report a bad value
/// naming its key as the source spelled it (`sched.stores.main.pool_size`). Values from the
/// flat form and the environment are strings; the readers parse them.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    values: Map<String, Value>,
    /// The store's own key (`stores.<name>`).
    path: KeyPath,
}

impl PartialEq for StoreOptions {
    /// Equal values, wherever they were read from.
    fn eq(&self, other: &StoreOptions) -> bool {
        self.values == other.values
    }
}

impl StoreOptions {
    /// An option's raw value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The option names.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Whether there are no options.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The key of an option as the source spelled it, for messages.
    pub fn key(&self, option: &str) -> String {
        self.path.child(option).render()
    }

    /// A text option.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the value is not text.
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.path.child(key).invalid(v, "text")),
        }
    }

    /// A whole-number option (≥ 1), written as a number or a string.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] otherwise.
    pub fn whole_number(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        self.values
            .get(key)
            .map(|v| whole_number(v, &self.path.child(key)))
            .transpose()
    }

    /// A boolean option, written as one or as a string (`true`, `no`, `on`, `0`, ...).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] otherwise.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(v) => boolean(v)
                .map(Some)
                .ok_or_else(|| self.path.child(key).invalid(v, "a boolean")),
        }
    }

    /// Fails on the first option not in `known` (a store type calls it so a typo is an
    /// error).
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`] naming the option.
    pub fn allow_only(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.values.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.path.child(k).unknown(&with_type(known))),
            None => Ok(()),
        }
    }

    /// An error of this store's value `key` (`expected`: what it takes).
    pub fn invalid(&self, key: &str, expected: impl Into<String>) -> ConfigError {
        let value = self.values.get(key).cloned().unwrap_or(Value::Null);
        self.path.child(key).invalid(&value, expected)
    }

    /// A failure building the store (a driver error), naming the store's key.
    pub fn error(&self, source: impl Into<BoxError>) -> ConfigError {
        ConfigError::Store {
            key: self.path.render(),
            source: source.into(),
        }
    }
}

fn with_type<'a>(known: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["type"];
    all.extend_from_slice(known);
    all
}

/// An executor by type name: `tokio` or `blocking` (with `max_workers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecutorConfig {
    /// [`Executor::tokio`].
    Tokio,
    /// [`Executor::blocking`].
    Blocking {
        /// At most this many runs at once (default [`DEFAULT_MAX_WORKERS`]).
        max_workers: usize,
    },
}

impl ExecutorConfig {
    /// The executor.
    pub fn build(&self) -> Executor {
        match *self {
            ExecutorConfig::Tokio => Executor::tokio(),
            ExecutorConfig::Blocking { max_workers } => Executor::blocking(max_workers),
        }
    }

    fn read(value: &Value, path: &KeyPath) -> Result<ExecutorConfig, ConfigError> {
        let t = table(value, path)?;
        let kind = type_name(t, path)?;
        let options =
            |known: &[&str]| match t.keys().find(|k| !with_type(known).contains(&k.as_str())) {
                Some(k) => Err(path.child(k).unknown(&with_type(known))),
                None => Ok(()),
            };
        match kind.as_str() {
            "tokio" => {
                options(&[])?;
                Ok(ExecutorConfig::Tokio)
            }
            "blocking" => {
                options(&["max_workers"])?;
                let max_workers = match t.get("max_workers") {
                    None => DEFAULT_MAX_WORKERS,
                    Some(v) => {
                        let here = path.child("max_workers");
                        usize::try_from(whole_number(v, &here)?)
                            .map_err(|_| here.invalid(v, WHOLE))?
                    }
                };
                Ok(ExecutorConfig::Blocking { max_workers })
            }
            _ => Err(path.child("type").invalid(
                &Value::String(kind),
                r#"an executor type: "tokio" or "blocking""#,
            )),
        }
    }
}

/// Builds a store of one type from its options; see [`StoreTypes`].
pub type StoreFactory = dyn Fn(&StoreOptions) -> Result<BoxJobStore, ConfigError> + Send + Sync;

/// The store types a configuration can name, each with the factory that builds it: a
/// registry keyed by type name, so backends plug in without the runtime knowing them
/// (APScheduler finds its store plugins by entry point name). `memory` is always there.
///
/// Factories are synchronous: a backend that needs a connection opens it lazily, on the
/// store's first call.
///
/// ```
/// use sched_runtime::config::{Config, StoreConfig, StoreTypes};
/// use sched_stores::{BoxJobStore, MemoryStore};
///
/// let mut types = StoreTypes::new();
/// types.register("scratch", |options| {
///     options.allow_only(&["size"])?;
///     let _size = options.whole_number("size")?.unwrap_or(100);
///     Ok(BoxJobStore::new(MemoryStore::new()))
/// });
/// let config = Config::new().with_store("tmp", StoreConfig::new("scratch").option("size", "zero"));
/// let err = types.build(&config.stores["tmp"]).unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid stores.tmp.size "zero": expected a whole number ≥ 1"#);
/// ```
#[derive(Clone)]
pub struct StoreTypes {
    factories: BTreeMap<String, Arc<StoreFactory>>,
}

impl fmt::Debug for StoreTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

impl Default for StoreTypes {
    fn default() -> StoreTypes {
        StoreTypes::new()
    }
}

impl StoreTypes {
    /// The built-in types: `memory` (no options).
    pub fn new() -> StoreTypes {
        let mut types = StoreTypes {
            factories: BTreeMap::new(),
        };
        types.register("memory", |options| {
            options.allow_only(&[])?;
            Ok(BoxJobStore::new(MemoryStore::new()))
        });
        types
    }

    /// Adds (or replaces) a store type.
    pub fn register(
        &mut self,
        kind: impl Into<String>,
        factory: impl Fn(&StoreOptions) -> Result<BoxJobStore, ConfigError> + Send + Sync + 'static,
    ) {
        self.factories.insert(kind.into(), Arc::new(factory));
    }

    /// Whether `kind` is known.
    pub fn contains(&self, kind: &str) -> bool {
        self.factories.contains_key(kind)
    }

    /// The known type names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Builds the store a configuration entry describes.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `type` key for an unknown type; what the
    /// factory returns otherwise.
    pub fn build(&self, store: &StoreConfig) -> Result<BoxJobStore, ConfigError> {
        match self.factories.get(&store.kind) {
            Some(factory) => factory(&store.options),
            None => {
                let known: Vec<String> = self.names().map(|n| format!("{n:?}")).collect();
                Err(store.options.path.child("type").invalid(
                    &Value::String(store.kind.clone()),
                    format!("a known store type: {}", known.join(", ")),
                ))
            }
        }
    }
}

impl SchedulerBuilder {
    /// A builder configured from `config` (with the built-in store types only; to name
    /// others, register them first: `Scheduler::builder().store_type(..).configure(..)`).
    ///
    /// # Errors
    /// See [`configure`](SchedulerBuilder::configure).
    pub fn from_config(config: &Config) -> Result<SchedulerBuilder, ConfigError> {
        Scheduler::builder().configure(config)
    }

    /// Registers a store type the configuration can name (see [`StoreTypes`]).
    pub fn store_type(
        mut self,
        kind: impl Into<String>,
        factory: impl Fn(&StoreOptions) -> Result<BoxJobStore, ConfigError> + Send + Sync + 'static,
    ) -> SchedulerBuilder {
        self.store_types.register(kind, factory);
        self
    }

    /// Applies a configuration, as APScheduler's `configure`: the stores and executors
    /// become exactly the configuration's (plus a `default` of each when it names none),
    /// the job defaults and time zone the configuration's (UTC when it has none). The
    /// clock, backlog cap, event capacity and registered store types are kept. Stores and
    /// executors added to the builder afterwards are added to these.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key, for an unknown store type or a store that cannot
    /// be built.
    pub fn configure(mut self, config: &Config) -> Result<SchedulerBuilder, ConfigError> {
        let (stores, executors) = config.build_parts(&self.store_types)?;
        self.stores = stores;
        self.executors = executors;
        self.defaults = config.job_defaults;
        self.zone = config.timezone.unwrap_or(Zone::UTC);
        Ok(self)
    }
}

impl Scheduler {
    /// Applies a configuration to a scheduler not started yet, as
    /// [`SchedulerBuilder::configure`] does (APScheduler's `configure`). Jobs added so far
    /// wait as pending and are written at start to the stores configured then.
    ///
    /// ```
    /// use sched_runtime::config::Config;
    /// use sched_runtime::{Scheduler, SchedulerError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scheduler = Scheduler::builder().build();
    /// scheduler.configure(&Config::from_flat([("sched.timezone", "Asia/Tokyo")])?).await?;
    /// assert_eq!(scheduler.zone().name(), "Asia/Tokyo");
    ///
    /// scheduler.start().await?;
    /// let err = scheduler.configure(&Config::new()).await.unwrap_err();
    /// assert!(matches!(err, SchedulerError::AlreadyRunning));
    /// # scheduler.shutdown(sched_runtime::ShutdownMode::Wait).await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`AlreadyRunning`](SchedulerError::AlreadyRunning) once started,
    /// [`ShutDown`](SchedulerError::ShutDown) after shutdown,
    /// [`Config`](SchedulerError::Config) for a store that cannot be built.
    pub async fn configure(&self, config: &Config) -> Result<(), SchedulerError> {
        let sh = &self.shared;
        let _ops = sh.ops.lock().await;
        match sh.state() {
            SchedulerState::Stopped => {}
            SchedulerState::ShutDown => return Err(SchedulerError::ShutDown),
            SchedulerState::Running | SchedulerState::Paused => {
                return Err(SchedulerError::AlreadyRunning);
            }
        }
        let (stores, executors) = config.build_parts(&sh.store_types)?;
        *sh.stores.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(stores);
        *sh.executors.write().unwrap_or_else(PoisonError::into_inner) = executors;
        *sh.defaults.write().unwrap_or_else(PoisonError::into_inner) = config.job_defaults;
        *sh.zone.write().unwrap_or_else(PoisonError::into_inner) =
            config.timezone.unwrap_or(Zone::UTC);
        Ok(())
    }
}
