//! PostgresStore against a real server (`SCHED_TEST_POSTGRES_URL`), each store in a schema
//! of its own, created and dropped by the test.

mod common;
#[macro_use]
#[path = "common/sql_server.rs"]
mod sql_server;

use sched_core::job::{JobId, LocalTask, TaskRef};
use sched_stores::postgres::PostgresStore;
use sched_stores::{JobStore, StoreErrorKind, StoreOptions};

sql_server_tests! {
    var: "SCHED_TEST_POSTGRES_URL",
    store: PostgresStore,
    pool: sqlx::postgres::PgPool,
    pool_options: sqlx::postgres::PgPoolOptions,
    create_schema: common::create_pg_schema,
    drop_schema: common::drop_pg_schema,
    version_table: "\"{schema}\".sched_schema_version",
    raw_insert: "INSERT INTO {table} (id, next_run_time, data) VALUES ($1, $2, $3)",
    analyze: "ANALYZE {table}",
    sort_step: "Sort",
    unreachable: "postgres://postgres@127.0.0.1:1/test",
}
