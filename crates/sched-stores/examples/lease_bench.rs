//! Cluster throughput at the store: how many fires per second one or two nodes can create
//! and finish through the lease capability, in batches, per server backend.
//!
//! ```text
//! SCHED_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1/test \
//! SCHED_TEST_MYSQL_URL=mysql://root@127.0.0.1/test \
//! SCHED_TEST_REDIS_URL=redis://127.0.0.1/ \
//!     cargo run --release -p sched-stores --example lease_bench -- [JOBS] [SECONDS] [BATCH]
//! ```
//!
//! For each backend whose URL is set: `JOBS` (default 10,000) jobs due in the past, then
//! for `SECONDS` (default 5) per run, each node loops over rounds of `claim_due(BATCH)` (default
//! 1,000), `commit_many` of one slot per claim (the job advanced by one second, so it
//! stays due) and `finish_fires` of the fires created: three round trips per batch. Runs
//! with one node, then two nodes (two store handles, two tasks) at once. Prints fires/s
//! (created and finished) and the median time of each step. Each backend works in a schema,
//! database or key prefix of its own, dropped at the end. The servers keep their default
//! durability settings; the numbers are those of a shared machine.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use sched_core::job::{Job, JobId, TaskRef};
use sched_stores::mysql::MySqlStore;
use sched_stores::postgres::PostgresStore;
use sched_stores::redis::RedisStore;
use sched_stores::{Commit, Finished, LeaseStore, StoreOptions};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(30);

/// What one node measured: fires created and finished, and the step times.
#[derive(Default)]
struct Tally {
    fires: usize,
    refused: usize,
    claim: Vec<Duration>,
    commit: Vec<Duration>,
    finish: Vec<Duration>,
}

/// `median/max` of step times, in ms.
fn spread(v: &mut [Duration]) -> String {
    if v.is_empty() {
        return "-".to_owned();
    }
    v.sort();
    format!(
        "{:.1}/{:.0}",
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    )
}

/// Runs rounds for `secs` on `store` as node `name`.
async fn node<S: LeaseStore>(store: &S, name: &str, secs: f64, batch: usize) -> Tally {
    let mut tally = Tally::default();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        let now = store.store_time().await.expect("time");
        let claims = store
            .claim_due(name, now, LEASE, batch)
            .await
            .expect("claim");
        tally.claim.push(t.elapsed());
        if claims.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let (slots, advanced) = common::stored_slots(&claims, |t| Some(t + TimeDelta::seconds(1)));
        let requests = common::commit_requests(&claims, &slots, &advanced);
        let t = Instant::now();
        let answers = store.commit_many(name, &requests).await.expect("commit");
        tally.commit.push(t.elapsed());
        let mut done = Vec::with_capacity(answers.len());
        for (claim, answer) in claims.iter().zip(answers) {
            match answer {
                Commit::Committed { created } => {
                    done.extend(created.into_iter().map(|fire| Finished {
                        epoch: claim.epoch,
                        fire,
                        outcome: "ok".to_owned(),
                    }))
                }
                Commit::Refused => tally.refused += 1,
                Commit::Lost => {}
            }
        }
        let t = Instant::now();
        let n = store.finish_fires(name, &done).await.expect("finish");
        tally.finish.push(t.elapsed());
        tally.fires += usize::try_from(n).unwrap_or(0);
    }
    tally
}

/// One run with the given store handles, one node each; prints a line.
async fn run<S: LeaseStore>(backend: &str, stores: &[S], secs: f64, batch: usize) {
    let start = Instant::now();
    let tallies = nodes(stores, secs, batch).await;
    let elapsed = start.elapsed().as_secs_f64();
    let fires: usize = tallies.iter().map(|t| t.fires).sum();
    let refused: usize = tallies.iter().map(|t| t.refused).sum();
    let (mut claim, mut commit, mut finish) = (Vec::new(), Vec::new(), Vec::new());
    for t in tallies {
        claim.extend(t.claim);
        commit.extend(t.commit);
        finish.extend(t.finish);
    }
    println!(
        "{backend:<9} {} node(s), batch {batch}: {:>7.0} fires/s ({fires} fires in {elapsed:.1} s, \
         {refused} refused); ms per batch (median/max): claim {}, commit_many {}, finish_fires {}",
        stores.len(),
        fires as f64 / elapsed,
        spread(&mut claim),
        spread(&mut commit),
        spread(&mut finish),
    );
}

/// Runs a node per store (one or two) at once.
async fn nodes<S: LeaseStore>(stores: &[S], secs: f64, batch: usize) -> Vec<Tally> {
    match stores {
        [a] => vec![node(a, "node0", secs, batch).await],
        [a, b] => {
            let (x, y) = tokio::join!(node(a, "node0", secs, batch), node(b, "node1", secs, batch));
            vec![x, y]
        }
        _ => panic!("one or two nodes"),
    }
}

/// `n` jobs due over the last hour.
fn jobs(n: usize, now: DateTime<Utc>) -> Vec<Job> {
    let trigger = common::codec_and_trigger().1;
    (0..n)
        .map(|i| {
            let mut job = Job::new(
                JobId::new(format!("job-{i:08}")).expect("id"),
                TaskRef::named("noop", json!({})),
                trigger(),
            );
            // Always due again, and committed again by another node before its last
            // fire is finished: max_instances would refuse it (that is tested elsewhere).
            job.max_instances = u32::MAX;
            job.next_run_time =
                Some(now - TimeDelta::hours(1) + TimeDelta::milliseconds(i as i64 % 3_600_000));
            job
        })
        .collect()
}

async fn bench<S: LeaseStore>(backend: &str, stores: [S; 2], n: usize, secs: f64, batch: usize) {
    let now = stores[0].store_time().await.expect("time");
    for chunk in jobs(n, now).chunks(1_000) {
        stores[0].add_jobs(chunk.to_vec()).await.expect("add");
    }
    run(backend, &stores[..1], secs, batch).await;
    run(backend, &stores[..], secs, batch).await;
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10_000, |a| a.parse().expect("JOBS"));
    let secs: f64 = args.next().map_or(5.0, |a| a.parse().expect("SECONDS"));
    let batch: usize = args.next().map_or(1_000, |a| a.parse().expect("BATCH"));
    let options = || StoreOptions::new().shared_codec(common::codec_and_trigger().0);
    println!("{n} jobs, {secs} s per run, batches of {batch}");

    if let Ok(url) = std::env::var("SCHED_TEST_POSTGRES_URL") {
        let admin = sqlx::PgPool::connect(&url).await.expect("postgres");
        let schema = common::unique("sched_lease_bench_");
        common::create_pg_schema(&admin, &schema).await;
        let open = || PostgresStore::connect_with(&url, options().schema(&schema));
        let stores = [open().await.expect("a"), open().await.expect("b")];
        bench("postgres", stores, n, secs, batch).await;
        common::drop_pg_schema(&admin, &schema).await;
    }

    if let Ok(url) = std::env::var("SCHED_TEST_MYSQL_URL") {
        let admin = sqlx::MySqlPool::connect(&url).await.expect("mysql");
        let db = common::unique("sched_lease_bench_");
        common::create_mysql_database(&admin, &db).await;
        let open = || MySqlStore::connect_with(&url, options().schema(&db));
        let stores = [open().await.expect("a"), open().await.expect("b")];
        bench("mariadb", stores, n, secs, batch).await;
        common::drop_mysql_database(&admin, &db).await;
    }

    if let Ok(url) = std::env::var("SCHED_TEST_REDIS_URL") {
        let prefix = format!("{}:", common::unique("sched_lease_bench_"));
        let open = || RedisStore::connect_with(&url, options().prefix(&prefix));
        let stores = [open().await.expect("a"), open().await.expect("b")];
        let mut conn = stores[0].connection();
        bench("redis", stores, n, secs, batch).await;
        common::delete_redis_keys(&mut conn, &prefix).await;
    }
}
