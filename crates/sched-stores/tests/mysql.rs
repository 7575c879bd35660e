//! MySqlStore against a real server (`SCHED_TEST_MYSQL_URL`), each store in a database
//! of its own, created and dropped by the test.

mod common;
#[macro_use]
#[path = "common/sql_server.rs"]
mod sql_server;

use common::{codec_and_trigger, job};
use sched_core::job::{JobId, LocalTask, TaskRef};
use sched_stores::mysql::MySqlStore;
use sched_stores::{JobStore, StoreErrorKind, StoreOptions};

sql_server_tests! {
    var: "SCHED_TEST_MYSQL_URL",
    store: MySqlStore,
    pool: sqlx::mysql::MySqlPool,
    pool_options: sqlx::mysql::MySqlPoolOptions,
    create_schema: common::create_mysql_database,
    drop_schema: common::drop_mysql_database,
    version_table: "`{schema}`.sched_schema_version",
    raw_insert: "INSERT INTO {table} (id, next_run_time, data) VALUES (?, ?, ?)",
    analyze: "ANALYZE TABLE {table}",
    sort_step: "filesort",
    unreachable: "mysql://root@127.0.0.1:1/test",
}

#[tokio::test]
async fn ids_longer_than_the_column_are_refused_naming_the_job() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let store = server.store().await;
    let long = "x".repeat(256);
    let err = store
        .add_job(job(&long, None, codec_and_trigger().1))
        .await
        .expect_err("a 256-character id");
    assert_eq!(err.kind(), StoreErrorKind::Serialization, "{err}");
    assert!(err.to_string().contains("255"), "{err}");
    let fits = "é".repeat(255);
    store
        .add_job(job(&fits, None, codec_and_trigger().1))
        .await
        .expect("255 characters fit");
    assert_eq!(
        store.all_jobs().await.expect("all")[0].id.as_str(),
        fits.as_str()
    );
    server.drop_schemas().await;
}

#[tokio::test]
async fn a_migration_interrupted_after_its_ddl_runs_again() {
    let Some(server) = Server::connect().await else {
        return;
    };
    // A connector died after creating the table but before recording version 1.
    let db = server.schema().await;
    let options = StoreOptions::new().schema(db.clone());
    let store = MySqlStore::from_pool(server.pool.clone(), options.clone())
        .await
        .expect("first");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM `{db}`.sched_schema_version"
    )))
    .execute(&server.pool)
    .await
    .expect("forget the version");
    drop(store);
    let store = MySqlStore::from_pool(server.pool.clone(), options)
        .await
        .expect("the migration runs again");
    assert_eq!(store.schema_version().await.expect("version"), 3);
    server.drop_schemas().await;
}
