//! RedisStore against a real server (`SCHED_TEST_REDIS_URL`), each store under a key prefix
//! of its own, whose keys the test deletes afterwards.

mod common;

use std::sync::Mutex;

use common::{codec_and_trigger, job, never_trigger, server_url, unique};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use sched_core::job::{JobId, LocalTask, TaskRef};
use sched_stores::redis::RedisStore;
use sched_stores::{JobStore, StoreErrorKind, StoreOptions, conformance};

const VAR: &str = "SCHED_TEST_REDIS_URL";

/// The server, and the prefixes the stores of one test were given.
struct Server {
    url: String,
    conn: ConnectionManager,
    prefixes: Mutex<Vec<String>>,
}

impl Server {
    async fn connect() -> Option<Server> {
        let url = server_url(VAR)?;
        let client = redis::Client::open(url.as_str()).expect("redis url");
        let conn = client
            .get_connection_manager()
            .await
            .expect("connect to the test server");
        Some(Server {
            url,
            conn,
            prefixes: Mutex::new(Vec::new()),
        })
    }

    fn prefix(&self) -> String {
        let prefix = format!("{}:", unique("sched-test-"));
        self.prefixes.lock().unwrap().push(prefix.clone());
        prefix
    }

    async fn store_with(&self, options: StoreOptions) -> RedisStore {
        RedisStore::connect_with(&self.url, options.prefix(self.prefix()))
            .await
            .expect("store")
    }

    async fn store(&self) -> RedisStore {
        self.store_with(StoreOptions::new().shared_codec(codec_and_trigger().0))
            .await
    }

    /// Deletes every key under the test's prefixes.
    async fn clean(self) {
        let mut conn = self.conn.clone();
        let prefixes = std::mem::take(&mut *self.prefixes.lock().unwrap());
        for prefix in prefixes {
            let keys: Vec<String> = conn.keys(format!("{prefix}*")).await.expect("keys");
            if !keys.is_empty() {
                let _: i64 = conn.del(keys).await.expect("del");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_passes_the_suite() {
    let Some(server) = Server::connect().await else {
        return;
    };
    conformance::run(|| server.store(), codec_and_trigger().1).await;
    server.clean().await;
}

#[tokio::test]
async fn undecodable_records_are_quarantined_never_lost() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let store = server.store().await;
    conformance::run_undecodable(
        &store,
        |id, next, text| {
            let mut conn = store.connection();
            let (jobs, run_times) = (
                store.jobs_key().to_owned(),
                store.run_times_key().to_owned(),
            );
            async move {
                let _: i64 = conn.hset(&jobs, &id, text).await.expect("hset");
                if let Some(t) = next {
                    let _: i64 = conn
                        .zadd(&run_times, &id, t.timestamp_micros())
                        .await
                        .expect("zadd");
                }
            }
        },
        codec_and_trigger().1,
    )
    .await;
    server.clean().await;
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
    server.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_at_once_check_the_layout_under_the_lock() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let prefix = server.prefix();
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let (url, options) = (server.url.clone(), StoreOptions::new().prefix(&prefix));
            tokio::spawn(async move { RedisStore::connect_with(&url, options).await })
        })
        .collect();
    for open in opens {
        let store = open.await.expect("join").expect("connect");
        assert_eq!(store.schema_version().await.expect("version"), 2);
    }
    let lock: Option<String> = server
        .conn
        .clone()
        .get(format!("{prefix}migrate_lock"))
        .await
        .expect("get");
    assert_eq!(lock, None, "the migration lock is released");
    server.clean().await;
}

#[tokio::test]
async fn prefixes_keep_stores_apart() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let (a, b) = (server.store().await, server.store().await);
    let trigger = codec_and_trigger().1;
    a.add_job(job("same", None, trigger)).await.expect("add a");
    b.add_job(job("same", None, trigger)).await.expect("add b");
    a.remove_job(&JobId::new("same").unwrap())
        .await
        .expect("remove a");
    assert_eq!(b.all_jobs().await.expect("b").len(), 1);
    server.clean().await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_with_its_cause() {
    // Needs no server: nothing listens on port 1.
    let err = RedisStore::connect("redis://127.0.0.1:1/")
        .await
        .expect_err("nothing listens on port 1");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn a_record_that_is_not_even_text_is_quarantined() {
    let Some(server) = Server::connect().await else {
        return;
    };
    let store = server.store().await;
    let trigger = codec_and_trigger().1;
    let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 5, 1, 8, 30, 0).unwrap();
    store
        .add_job(job("good", Some(at), trigger))
        .await
        .expect("add");
    let mut conn = store.connection();
    let _: i64 = conn
        .hset(store.jobs_key(), "bytes", vec![0xff_u8, 0x00, 0xfe])
        .await
        .expect("hset");
    let bad_key = vec![0xff_u8, 0x01];
    let _: i64 = conn
        .hset(store.jobs_key(), &bad_key, "junk")
        .await
        .expect("hset");
    for member in [b"bytes".to_vec(), bad_key] {
        let _: i64 = conn
            .zadd(store.run_times_key(), member, at.timestamp_micros() - 1)
            .await
            .expect("zadd");
    }
    // Both broken records come first; with a limit of 1 the store must quarantine them and
    // go on to the good one.
    let due = store.due_jobs(at, 1).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id.as_str(), "good");
    assert_eq!(store.next_run_time().await.expect("next"), Some(at));
    assert_eq!(store.all_jobs().await.expect("all").len(), 1);
    let q = store.quarantined_jobs().await.expect("quarantined");
    let ids: Vec<&str> = q.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["bytes", "\u{fffd}\u{1}"]);
    server.clean().await;
}
