//! Configuration three ways (builder, TOML/JSON, flat map and environment), its errors, and
//! stores and executors added and removed at run time, on tokio's paused clock.

mod support;

use std::time::Duration;

use sched_core::event::{Event, EventKind};
use sched_core::job::{Coalesce, JobDefaults, JobSpec};
use sched_runtime::config::{Config, ConfigError, ExecutorConfig, StoreConfig};
use sched_runtime::{Executor, Scheduler, SchedulerError, ShutdownMode};
use sched_stores::{BoxJobStore, JobStore, MemoryStore};
use support::{Every, Runs, at, id, scheduler, until};

const TOML: &str = r#"
timezone = "Europe/Berlin"

[stores.default]
type = "memory"

[executors.default]
type = "tokio"

[executors.pool]
type = "blocking"
max_workers = 8

[job_defaults]
misfire_grace_time = 30
coalesce = "latest"
max_instances = 3
"#;

fn expected() -> Config {
    Config::new()
        .with_timezone(sched_core::Zone::from_name("Europe/Berlin", "timezone").unwrap())
        .with_store("default", StoreConfig::new("memory"))
        .with_executor("default", ExecutorConfig::Tokio)
        .with_executor("pool", ExecutorConfig::Blocking { max_workers: 8 })
        .with_job_defaults(JobDefaults {
            misfire_grace_time: Some(Duration::from_secs(30)),
            coalesce: Coalesce::Latest,
            max_instances: 3,
        })
}

#[test]
fn toml_json_flat_and_environment_read_the_same() {
    let from_toml = Config::from_toml(TOML).unwrap();
    assert_eq!(from_toml, expected());

    let json = r#"{"timezone": "Europe/Berlin",
        "stores": {"default": {"type": "memory"}},
        "executors": {"default": {"type": "tokio"}, "pool": {"type": "blocking", "max_workers": 8}},
        "job_defaults": {"misfire_grace_time": 30, "coalesce": "latest", "max_instances": 3}}"#;
    assert_eq!(Config::from_json(json).unwrap(), expected());
    // Through serde as well, so it can sit inside an application's own settings.
    let via_serde: Config = serde_json::from_str(json).unwrap();
    assert_eq!(via_serde, expected());
    let via_toml_serde: Config = toml::from_str(TOML).unwrap();
    assert_eq!(via_toml_serde, expected());

    let flat = Config::from_flat([
        ("sched.timezone", "Europe/Berlin"),
        ("sched.stores.default.type", "memory"),
        ("sched.executors.default.type", "tokio"),
        ("sched.executors.pool.type", "blocking"),
        ("sched.executors.pool.max_workers", "8"),
        ("sched.job_defaults.misfire_grace_time", "30"),
        ("sched.job_defaults.coalesce", "latest"),
        ("sched.job_defaults.max_instances", "3"),
        ("unrelated.key", "ignored"),
    ])
    .unwrap();
    assert_eq!(flat, expected());

    let env = Config::from_env_vars([
        ("SCHED_TIMEZONE", "Europe/Berlin"),
        ("SCHED_STORES__DEFAULT__TYPE", "memory"),
        ("SCHED_EXECUTORS__DEFAULT__TYPE", "tokio"),
        ("SCHED_EXECUTORS__POOL__TYPE", "blocking"),
        ("SCHED_EXECUTORS__POOL__MAX_WORKERS", "8"),
        ("SCHED_JOB_DEFAULTS__MISFIRE_GRACE_TIME", "30"),
        ("SCHED_JOB_DEFAULTS__COALESCE", "latest"),
        ("SCHED_JOB_DEFAULTS__MAX_INSTANCES", "3"),
        ("SCHED_CONFORMANCE_FILTER", "not ours"),
        ("PATH", "/bin"),
    ])
    .unwrap();
    assert_eq!(env, expected());
}

#[test]
fn serialized_config_reads_back() {
    let config = expected().with_job_defaults(JobDefaults {
        misfire_grace_time: None,
        coalesce: Coalesce::All,
        max_instances: 2,
    });
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(Config::from_json(&json).unwrap(), config);
}

#[test]
fn apscheduler_style_values() {
    // `coalesce` as APScheduler's boolean, grace "none", the flat form's string booleans.
    let c = Config::from_flat([
        ("sched.job_defaults.coalesce", "false"),
        ("sched.job_defaults.misfire_grace_time", "none"),
        ("sched.executors.default.type", "blocking"),
        ("sched.executors.default.max_workers", "20"),
        ("sched.timezone", "UTC"),
        ("sched.stores.default.type", "memory"),
    ])
    .unwrap();
    assert_eq!(c.job_defaults.coalesce, Coalesce::All);
    assert_eq!(c.job_defaults.misfire_grace_time, None);
    assert_eq!(c.job_defaults.max_instances, 1); // APScheduler's default
    assert_eq!(
        c.executors["default"],
        ExecutorConfig::Blocking { max_workers: 20 }
    );
    let c =
        Config::from_toml("[job_defaults]\ncoalesce = true\n[executors.p]\ntype = \"blocking\"")
            .unwrap();
    assert_eq!(c.job_defaults.coalesce, Coalesce::Latest);
    assert_eq!(
        c.executors["p"],
        ExecutorConfig::Blocking { max_workers: 10 }
    );
}

fn err_text(r: Result<Config, ConfigError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_values_name_the_key_and_the_value() {
    assert_eq!(
        err_text(Config::from_flat([(
            "sched.job_defaults.max_instances",
            "zero"
        )])),
        r#"invalid sched.job_defaults.max_instances "zero": expected a whole number ≥ 1"#
    );
    assert_eq!(
        err_text(Config::from_toml("[job_defaults]\nmax_instances = 0")),
        "invalid job_defaults.max_instances 0: expected a whole number ≥ 1"
    );
    assert_eq!(
        err_text(Config::from_env_vars([(
            "SCHED_JOB_DEFAULTS__MAX_INSTANCES",
            "-1"
        )])),
        r#"invalid SCHED_JOB_DEFAULTS__MAX_INSTANCES "-1": expected a whole number ≥ 1"#
    );
    assert_eq!(
        err_text(Config::from_flat([(
            "sched.job_defaults.coalesce",
            "sometimes"
        )])),
        r#"invalid sched.job_defaults.coalesce "sometimes": expected "earliest", "latest", "all", or a boolean (true = latest, false = all)"#
    );
    assert_eq!(
        err_text(Config::from_flat([(
            "sched.job_defaults.misfire_grace_time",
            "-5"
        )])),
        r#"invalid sched.job_defaults.misfire_grace_time "-5": expected a number of seconds ≥ 0, or "none" to run however late"#
    );
    assert_eq!(
        err_text(Config::from_flat([("sched.timezone", "Mars/Olympus")])),
        r#"invalid sched.timezone "Mars/Olympus": expected an IANA time zone name such as "Europe/Berlin" or "UTC""#
    );
    assert_eq!(
        err_text(Config::from_json(
            r#"{"executors": {"x": {"type": "threadpool"}}}"#
        )),
        r#"invalid executors.x.type "threadpool": expected an executor type: "tokio" or "blocking""#
    );
    assert_eq!(
        err_text(Config::from_flat([("sched.executors.x.max_workers", "4")])),
        "missing sched.executors.x.type"
    );
    assert_eq!(
        err_text(Config::from_flat([("sched.job_default.coalesce", "true")])),
        "unknown key sched.job_default: expected one of timezone, job_defaults, stores, executors"
    );
    assert_eq!(
        err_text(Config::from_toml(
            "[executors.p]\ntype = \"tokio\"\nmax_workers = 3"
        )),
        "unknown key executors.p.max_workers: expected one of type"
    );
    let e = Config::from_toml("timezone = ").unwrap_err();
    assert!(
        matches!(e, ConfigError::Malformed { format: "TOML", .. }),
        "{e}"
    );
    // Through serde, the same message.
    let e = serde_json::from_str::<Config>(r#"{"job_defaults": {"max_instances": "many"}}"#)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"invalid job_defaults.max_instances "many""#),
        "{e}"
    );
}

#[test]
fn unknown_store_types_are_errors_naming_the_key_and_types_plug_in() {
    let config = Config::from_flat([("sched.stores.main.type", "sqlite")]).unwrap();
    let err = Scheduler::builder().configure(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid sched.stores.main.type "sqlite": expected a known store type: "memory""#
    );
    assert_eq!(err.key(), Some("sched.stores.main.type"));

    let err = Scheduler::builder()
        .configure(
            &Config::from_flat([
                ("sched.stores.main.type", "memory"),
                ("sched.stores.main.path", "x"),
            ])
            .unwrap(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown key sched.stores.main.path: expected one of type"
    );

    // A backend registers its type; its options are read with errors naming their keys.
    let config = Config::from_flat([
        ("sched.stores.main.type", "sqlite"),
        ("sched.stores.main.path", "jobs.db"),
    ])
    .unwrap();
    let scheduler = Scheduler::builder()
        .store_type("sqlite", |options| {
            options.allow_only(&["path"])?;
            let path = options
                .string("path")?
                .ok_or_else(|| options.invalid("path", "a file path"))?;
            assert_eq!(path, "jobs.db");
            Ok(BoxJobStore::new(MemoryStore::new()))
        })
        .configure(&config)
        .unwrap()
        .build();
    assert!(format!("{scheduler:?}").contains("main"), "{scheduler:?}");
}

// Built from the TOML: jobs take the configured defaults and can use the configured pool.
#[tokio::test(start_paused = true)]
async fn a_configured_scheduler_applies_defaults_and_executors() {
    let config = Config::from_toml(TOML).unwrap();
    let s = Scheduler::builder().configure(&config).unwrap().build();
    assert_eq!(s.zone().name(), "Europe/Berlin");
    let job = s
        .add_job(
            JobSpec::new(
                sched_runtime::closure_task("t", |_| async { Ok::<_, String>(()) }),
                Every::minute_from(at(0, 1, 0)),
            )
            .executor("pool"),
        )
        .await
        .unwrap();
    let job = s.get_job(&job).await.unwrap().unwrap();
    assert_eq!(job.max_instances, 3);
    assert_eq!(job.misfire_grace_time, Some(Duration::from_secs(30)));
    assert_eq!(&*job.executor, "pool");
    // `SchedulerBuilder::from_config` is the same.
    let s2 = sched_runtime::SchedulerBuilder::from_config(&config)
        .unwrap()
        .build();
    assert_eq!(s2.zone().name(), "Europe/Berlin");
}

#[tokio::test(start_paused = true)]
async fn configure_before_start_and_not_after() {
    let (s, _clock, _rec) = scheduler();
    let config = Config::from_flat([
        ("sched.job_defaults.max_instances", "4"),
        ("sched.executors.pool.type", "blocking"),
    ])
    .unwrap();
    s.configure(&config).await.unwrap();
    // A job naming the configured executor is accepted, with the configured defaults.
    let job = s
        .add_job(
            JobSpec::new(
                sched_runtime::closure_task("t", |_| async { Ok::<_, String>(()) }),
                Every::minute_from(at(0, 1, 0)),
            )
            .executor("pool"),
        )
        .await
        .unwrap();
    assert_eq!(s.get_job(&job).await.unwrap().unwrap().max_instances, 4);

    s.start().await.unwrap();
    let err = s.configure(&config).await.unwrap_err();
    assert!(matches!(err, SchedulerError::AlreadyRunning), "{err}");
    s.shutdown(ShutdownMode::Wait).await;
    let err = s.configure(&config).await.unwrap_err();
    assert!(matches!(err, SchedulerError::ShutDown), "{err}");
}

fn scheduler_events(rec: &support::Recorder) -> Vec<(EventKind, Option<String>)> {
    rec.0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Scheduler(s) => Some((s.kind, s.alias.clone())),
            _ => None,
        })
        .collect()
}

// A store added at 00:00:30 holding a job due at 00:01 (while the dispatcher sleeps a
// minute on an empty default store): its job runs at 00:01. Removed at 00:01:30: its
// 00:02 run does not happen, and the store hands back with the job still in it.
//
//   00:00:30   00:01   00:01:30   00:02
//    add         R      remove      -
#[tokio::test(start_paused = true)]
async fn stores_added_and_removed_while_running() {
    let (s, clock, rec) = scheduler();
    s.start().await.unwrap();
    until(&clock, at(0, 0, 30)).await;

    // A store that already holds a job (as a persistent store would after a restart).
    let runs = Runs::default();
    let extra = MemoryStore::new();
    let mut job = sched_core::job::Job::new(
        id("archived"),
        runs.task(&clock, Duration::ZERO),
        Every::minute_from(at(0, 1, 0)),
    );
    job.store = "extra".into();
    job.next_run_time = Some(at(0, 1, 0));
    extra.add_job(job).await.unwrap();
    s.add_store("extra", extra).await.unwrap();
    let err = s.add_store("extra", MemoryStore::new()).await.unwrap_err();
    assert!(
        matches!(err, SchedulerError::StoreExists(ref n) if n == "extra"),
        "{err}"
    );

    until(&clock, at(0, 1, 30)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0)]);
    let removed = s.remove_store("extra").await.unwrap();
    until(&clock, at(0, 2, 30)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0)]);
    let left = removed.lookup_job(&id("archived")).await.unwrap().unwrap();
    assert_eq!(left.next_run_time, Some(at(0, 2, 0)));
    assert!(s.get_job(&id("archived")).await.unwrap().is_none());
    assert!(matches!(
        s.remove_store("extra").await.unwrap_err(),
        SchedulerError::UnknownStore(_)
    ));

    let events = scheduler_events(&rec);
    assert!(events.contains(&(EventKind::JobstoreAdded, Some("extra".into()))));
    assert!(events.contains(&(EventKind::JobstoreRemoved, Some("extra".into()))));
    s.shutdown(ShutdownMode::Wait).await;
}

// An executor added at 00:00:30 runs the 00:01 job that names it; removed at 00:01:30, the
// 00:02 run is a job error naming the executor, and the schedule goes on.
#[tokio::test(start_paused = true)]
async fn executors_added_and_removed_while_running() {
    let (s, clock, rec) = scheduler();
    s.start().await.unwrap();
    until(&clock, at(0, 0, 30)).await;
    s.add_executor("pool", Executor::tokio()).unwrap();
    assert!(matches!(
        s.add_executor("pool", Executor::blocking(2)).unwrap_err(),
        SchedulerError::ExecutorExists(_)
    ));
    let runs = Runs::default();
    s.add_job(
        JobSpec::new(
            runs.task(&clock, Duration::ZERO),
            Every::minute_from(at(0, 1, 0)),
        )
        .id("j")
        .unwrap()
        .executor("pool"),
    )
    .await
    .unwrap();
    until(&clock, at(0, 1, 30)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0)]);
    assert_eq!(s.remove_executor("pool").unwrap().max_workers(), None);
    until(&clock, at(0, 2, 30)).await;
    let errors = rec.executions(EventKind::JobError);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].failure.as_ref().unwrap().message.contains("pool"),
        "{errors:?}"
    );
    assert!(matches!(
        s.remove_executor("pool").unwrap_err(),
        SchedulerError::UnknownExecutor(_)
    ));
    let events = scheduler_events(&rec);
    assert!(events.contains(&(EventKind::ExecutorAdded, Some("pool".into()))));
    assert!(events.contains(&(EventKind::ExecutorRemoved, Some("pool".into()))));
    s.shutdown(ShutdownMode::Wait).await;
}

// Before start nothing is announced; start announces what it starts with, once.
#[tokio::test(start_paused = true)]
async fn changes_before_start_are_announced_by_start() {
    let (s, _clock, rec) = scheduler();
    s.add_store("extra", MemoryStore::new()).await.unwrap();
    s.add_executor("pool", Executor::blocking(1)).unwrap();
    s.add_executor("gone", Executor::tokio()).unwrap();
    s.remove_executor("gone").unwrap();
    assert!(scheduler_events(&rec).is_empty());
    s.start().await.unwrap();
    let events = scheduler_events(&rec);
    assert_eq!(
        events,
        [
            (EventKind::JobstoreAdded, Some("default".into())),
            (EventKind::JobstoreAdded, Some("extra".into())),
            (EventKind::ExecutorAdded, Some("default".into())),
            (EventKind::ExecutorAdded, Some("pool".into())),
            (EventKind::SchedulerStarted, None),
        ]
    );
    s.shutdown(ShutdownMode::Wait).await;
}
