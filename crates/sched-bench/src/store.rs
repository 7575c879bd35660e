//! The store the `sched` implementation runs on (`--store`): memory, or a persistent store
//! in a private place created for the run and dropped after it — a temporary SQLite file, a
//! PostgreSQL schema, a MySQL/MariaDB database, a Redis key prefix.

use std::path::PathBuf;

use clap::ValueEnum;
use sched_stores::sqlite::SqliteStore;
use sched_stores::{BoxJobStore, MemoryStore, StoreOptions};

/// Which job store the scheduler runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub(crate) enum StoreKind {
    /// `MemoryStore`.
    Memory,
    /// `SqliteStore` in a temporary file.
    Sqlite,
    /// `PostgresStore` in a private schema.
    Postgres,
    /// `MySqlStore` in a private database.
    Mysql,
    /// `RedisStore` under a private key prefix.
    Redis,
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
            StoreKind::Mysql => "mysql",
            StoreKind::Redis => "redis",
        }
    }

    /// Whether jobs must be persistable (a registered task with JSON arguments).
    pub(crate) fn persistent(self) -> bool {
        self != StoreKind::Memory
    }

    /// The environment variable a server URL is read from when `--store-url` is not given.
    pub(crate) fn url_var(self) -> Option<&'static str> {
        match self {
            StoreKind::Memory | StoreKind::Sqlite => None,
            StoreKind::Postgres => Some("SCHED_TEST_POSTGRES_URL"),
            StoreKind::Mysql => Some("SCHED_TEST_MYSQL_URL"),
            StoreKind::Redis => Some("SCHED_TEST_REDIS_URL"),
        }
    }

    /// The server URL: `--store-url`, else the environment variable.
    pub(crate) fn url(self, given: Option<&str>) -> Result<Option<String>, String> {
        let Some(var) = self.url_var() else {
            return Ok(None);
        };
        match given {
            Some(u) => Ok(Some(u.to_owned())),
            None => match std::env::var(var) {
                Ok(u) if !u.is_empty() => Ok(Some(u)),
                _ => Err(format!(
                    "--store {} needs --store-url or {var}",
                    self.name()
                )),
            },
        }
    }
}

/// The store selected on the command line, with its server URL.
#[derive(Clone, Debug)]
pub(crate) struct StoreSel {
    pub(crate) kind: StoreKind,
    pub(crate) url: Option<String>,
}

/// What to drop after the run.
#[derive(Debug)]
pub(crate) enum Private {
    None,
    File(PathBuf),
    PgSchema(sqlx::PgPool, String),
    MyDatabase(sqlx::MySqlPool, String),
    RedisPrefix(redis::aio::ConnectionManager, String),
}

/// A name no other run uses.
fn unique(base: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{base}{}_{nanos:09}", std::process::id())
}

/// Opens the store in a private place of its own.
pub(crate) async fn open(
    kind: StoreKind,
    url: Option<&str>,
) -> Result<(BoxJobStore, Private), String> {
    let url = kind.url(url)?;
    let url = url.as_deref().unwrap_or("");
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", kind.name());
    match kind {
        StoreKind::Memory => Ok((BoxJobStore::new(MemoryStore::new()), Private::None)),
        StoreKind::Sqlite => {
            let path = std::env::temp_dir().join(format!("{}.db", unique("sched-bench-")));
            let store = SqliteStore::open(&path)
                .await
                .map_err(|e| err("open", &e))?;
            Ok((BoxJobStore::new(store), Private::File(path)))
        }
        StoreKind::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(10)
                .connect(url)
                .await
                .map_err(|e| err("connect", &e))?;
            let schema = unique("sched_bench_");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                .execute(&pool)
                .await
                .map_err(|e| err("create schema", &e))?;
            let store = sched_stores::postgres::PostgresStore::from_pool(
                pool.clone(),
                StoreOptions::new().schema(schema.clone()),
            )
            .await
            .map_err(|e| err("store", &e))?;
            Ok((BoxJobStore::new(store), Private::PgSchema(pool, schema)))
        }
        StoreKind::Mysql => {
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(10)
                .connect(url)
                .await
                .map_err(|e| err("connect", &e))?;
            let db = unique("sched_bench_");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{db}`")))
                .execute(&pool)
                .await
                .map_err(|e| err("create database", &e))?;
            let store = sched_stores::mysql::MySqlStore::from_pool(
                pool.clone(),
                StoreOptions::new().schema(db.clone()),
            )
            .await
            .map_err(|e| err("store", &e))?;
            Ok((BoxJobStore::new(store), Private::MyDatabase(pool, db)))
        }
        StoreKind::Redis => {
            let prefix = format!("{}:", unique("sched-bench-"));
            let client = redis::Client::open(url).map_err(|e| err("url", &e))?;
            let conn = client
                .get_connection_manager()
                .await
                .map_err(|e| err("connect", &e))?;
            let store = sched_stores::redis::RedisStore::connect_with(
                url,
                StoreOptions::new().prefix(prefix.clone()),
            )
            .await
            .map_err(|e| err("store", &e))?;
            Ok((BoxJobStore::new(store), Private::RedisPrefix(conn, prefix)))
        }
    }
}

impl Private {
    /// Drops the private schema, database, key prefix or file; says so on stderr when it
    /// cannot.
    pub(crate) async fn drop_it(self) {
        let result: Result<(), String> = match self {
            Private::None => Ok(()),
            Private::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
                Ok(())
            }
            Private::PgSchema(pool, schema) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&pool)
            .await
            .map(drop)
            .map_err(|e| format!("drop schema {schema}: {e}")),
            Private::MyDatabase(pool, db) => {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{db}`")))
                    .execute(&pool)
                    .await
                    .map(drop)
                    .map_err(|e| format!("drop database {db}: {e}"))
            }
            Private::RedisPrefix(mut conn, prefix) => {
                let keys: Result<Vec<String>, _> = redis::cmd("KEYS")
                    .arg(format!("{prefix}*"))
                    .query_async(&mut conn)
                    .await;
                match keys {
                    Ok(keys) if keys.is_empty() => Ok(()),
                    Ok(keys) => redis::cmd("DEL")
                        .arg(&keys)
                        .query_async::<()>(&mut conn)
                        .await
                        .map_err(|e| format!("delete keys {prefix}*: {e}")),
                    Err(e) => Err(format!("list keys {prefix}*: {e}")),
                }
            }
        };
        if let Err(e) = result {
            eprintln!("sched-bench: cleanup failed: {e}");
        }
    }
}
