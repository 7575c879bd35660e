//! PostgresStore against a real server (`SCHED_TEST_POSTGRES_URL`), each store in a schema
//! of its own, created and dropped by the test.

mod common;

use std::sync::Mutex;

use common::{codec_and_trigger, job, never_trigger, server_url, unique};
use sched_core::job::{JobId, LocalTask, TaskRef};
use sched_stores::postgres::PostgresStore;
use sched_stores::{JobStore, StoreErrorKind, StoreOptions, conformance};
use sqlx::postgres::{PgPool, PgPoolOptions};

const VAR: &str = "SCHED_TEST_POSTGRES_URL";

/// A pool shared by the stores of one test, and the schemas they were given.
struct Server {
    pool: PgPool,
    schemas: Mutex<Vec<String>>,
}

impl Server {
    async fn connect() -> Option<Server> {
        let url = server_url(VAR)?;
        let pool = PgPoolOptions::new()
            .max_connections(12)
            .connect(&url)
            .await
            .expect("connect to the test server");
        Some(Server {
            pool,
            schemas: Mutex::new(Vec::new()),
        })
    }

    /// A new, empty schema.
    async fn schema(&self) -> String {
        let schema = unique("sched_test_");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&self.pool)
            .await
            .expect("create schema");
        self.schemas.lock().unwrap().push(schema.clone());
        schema
    }

    async fn store_with(&self, options: StoreOptions) -> PostgresStore {
        let options = options.schema(self.schema().await);
        PostgresStore::from_pool(self.pool.clone(), options)
            .await
            .expect("store")
    }

    async fn store(&self) -> PostgresStore {
        self.store_with(StoreOptions::new().shared_codec(codec_and_trigger().0))
            .await
    }

    async fn drop_schemas(self) {
        let schemas = std::mem::take(&mut *self.schemas.lock().unwrap());
        for schema in schemas {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&self.pool)
            .await
            .expect("drop schema");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_suite() {
    let Some(server) = Server::connect().await else {
        return;
    };
    conformance::run(|| server.store(), codec_and_trigger().1).await;
    server.drop_schemas().await;
}

#[tokio::test]
async fn undecodable_rows_are_quarantined_never_lost() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let store = server.store().await;
    let insert = format!(
        "INSERT INTO {} (id, next_run_time, data) VALUES ($1, $2, $3)",
        store.jobs_table()
    );
    conformance::run_undecodable(
        &store,
        |id, next, text| {
            let (insert, pool) = (insert.clone(), store.pool().clone());
            async move {
                sqlx::query(sqlx::AssertSqlSafe(insert))
                    .bind(id)
                    .bind(next.map(|t| t.timestamp_micros()))
                    .bind(text)
                    .execute(&pool)
                    .await
                    .expect("raw insert");
            }
        },
        codec_and_trigger().1,
    )
    .await;
    server.drop_schemas().await;
}

#[tokio::test]
async fn default_codec_refuses_jobs_it_cannot_persist_naming_them() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let store = server.store_with(StoreOptions::new()).await;
    let mut closure = job("closure-job", None, never_trigger);
    closure.task = TaskRef::Local(LocalTask::new("tick", ()));
    let err = store.add_job(closure).await.expect_err("closure");
    assert_eq!(err.kind(), StoreErrorKind::Serialization);
    assert!(err.to_string().contains("job closure-job"), "{err}");
    assert!(store.all_jobs().await.expect("all").is_empty());
    server.drop_schemas().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_at_once_migrate_once() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let schema = server.schema().await;
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let pool = server.pool.clone();
            let options = StoreOptions::new().schema(schema.clone());
            tokio::spawn(async move { PostgresStore::from_pool(pool, options).await })
        })
        .collect();
    for open in opens {
        let store = open.await.expect("join").expect("connect");
        assert_eq!(store.schema_version().await.expect("version"), 3);
    }
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{schema}\".sched_schema_version"
    )))
    .fetch_one(&server.pool)
    .await
    .expect("count");
    assert_eq!(rows, 3, "migrations 1, 2 and 3 recorded once each");
    server.drop_schemas().await;
}

#[tokio::test]
async fn prefixes_keep_stores_apart_in_one_schema() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let schema = server.schema().await;
    let options = StoreOptions::new()
        .shared_codec(codec_and_trigger().0)
        .schema(schema);
    let a = PostgresStore::from_pool(server.pool.clone(), options.clone().prefix("a_"))
        .await
        .expect("a");
    let b = PostgresStore::from_pool(server.pool.clone(), options.prefix("b_"))
        .await
        .expect("b");
    let trigger = codec_and_trigger().1;
    a.add_job(job("same", None, trigger)).await.expect("add a");
    b.add_job(job("same", None, trigger)).await.expect("add b");
    a.remove_job(&JobId::new("same").unwrap())
        .await
        .expect("remove a");
    assert_eq!(b.all_jobs().await.expect("b").len(), 1);
    server.drop_schemas().await;
}

#[tokio::test]
async fn due_jobs_query_uses_the_index() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let store = server.store().await;
    let trigger = codec_and_trigger().1;
    let base = chrono::Utc::now();
    let jobs = (0..5_000)
        .map(|i| {
            job(
                &format!("j{i:05}"),
                Some(base + chrono::Duration::seconds(i)),
                trigger,
            )
        })
        .collect();
    store.add_jobs(jobs).await.expect("add");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ANALYZE {}",
        store.jobs_table()
    )))
    .execute(store.pool())
    .await
    .expect("analyze");
    let plan = store.due_jobs_plan().await.expect("plan");
    assert!(plan.contains("sched_jobs_next_run_time"), "{plan}");
    assert!(!plan.contains("Sort"), "no sort step: {plan}");
    server.drop_schemas().await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_with_its_cause() {
    // Needs no server: nothing listens on port 1.
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .expect_err("nothing listens on port 1");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("Connection refused"), "{err}");
}
