//! The lease capability against real servers: two stores on one schema (or prefix) are two
//! nodes. Each backend runs the same contract: claims skip what is leased, every write is
//! fenced by node and epoch, fires are created once, leases end on the store's clock.

mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::{codec_and_trigger, job, server_url, unique};
use sched_core::job::JobId;
use sched_stores::mysql::MySqlStore;
use sched_stores::postgres::PostgresStore;
use sched_stores::redis::RedisStore;
use sched_stores::{Commit, FireId, LeaseStore, StoreOptions};

const LONG: Duration = Duration::from_secs(30);

fn ids(claims: &[sched_stores::Claim]) -> Vec<&str> {
    claims.iter().map(|c| c.job.id.as_str()).collect()
}

/// The contract, for two nodes `a` and `b` on one store.
async fn contract<S: LeaseStore>(a: &S, b: &S) {
    let trigger = codec_and_trigger().1;
    let now = a.store_time().await.expect("store time");
    let skew = (now - Utc::now()).abs();
    assert!(skew < TimeDelta::seconds(5), "store clock off by {skew}");
    let t1 = now - TimeDelta::seconds(10);
    let t2 = now - TimeDelta::seconds(5);
    let later = now + TimeDelta::hours(1);
    a.add_jobs(vec![
        job("j1", Some(t1), trigger),
        job("j2", Some(t2), trigger),
        job("j3", Some(later), trigger),
    ])
    .await
    .expect("add");

    // A claims what is due; B finds nothing left.
    let claims = a.claim_due("A", now, LONG, 10).await.expect("claim");
    assert_eq!(ids(&claims), ["j1", "j2"]);
    assert!(claims.iter().all(|c| c.epoch == 1), "{claims:?}");
    assert!(claims[0].expires_at > now + TimeDelta::seconds(25));
    assert!(
        b.claim_due("B", now, LONG, 10)
            .await
            .expect("claim")
            .is_empty()
    );

    // Writes of another node, or of another epoch, match nothing and change nothing.
    let mut j1 = claims[0].job.clone();
    j1.next_run_time = Some(later);
    assert_eq!(
        b.commit_fires("B", 1, &[t1], &j1).await.expect("commit"),
        Commit::Lost
    );
    assert_eq!(
        a.commit_fires("A", 2, &[t1], &j1).await.expect("commit"),
        Commit::Lost
    );
    let stored = a.lookup_job(&j1.id).await.expect("lookup").expect("j1");
    assert_eq!(
        stored.next_run_time.map(|t| t.timestamp()),
        Some(t1.timestamp())
    );

    // The holder creates the fire, advances the job and releases it, at once.
    let fire1 = FireId::new(JobId::new("j1").unwrap(), t1);
    assert_eq!(
        a.commit_fires("A", 1, &[t1], &j1).await.expect("commit"),
        Commit::Committed {
            created: vec![fire1.clone()]
        }
    );
    let stored = a.lookup_job(&j1.id).await.expect("lookup").expect("j1");
    assert_eq!(
        stored.next_run_time.map(|t| t.timestamp()),
        Some(later.timestamp())
    );
    assert_eq!(
        fire1.idempotency_key(),
        format!("j1@{}", t1.timestamp_micros())
    );
    assert!(!b.finish_fire("B", 1, &fire1, "ok").await.expect("finish"));
    assert!(a.finish_fire("A", 1, &fire1, "ok").await.expect("finish"));

    // Released by A, j2 is B's at the next epoch; A's old epoch is fenced off.
    let j2 = JobId::new("j2").unwrap();
    assert!(a.release("A", &j2, 1).await.expect("release"));
    assert!(!a.release("A", &j2, 1).await.expect("release again"));
    let claims = b.claim_due("B", now, LONG, 10).await.expect("claim");
    assert_eq!(ids(&claims), ["j2"]);
    assert_eq!(claims[0].epoch, 2);
    let mut j2_job = claims[0].job.clone();
    j2_job.next_run_time = Some(later);
    assert_eq!(
        a.commit_fires("A", 1, &[t2], &j2_job)
            .await
            .expect("commit"),
        Commit::Lost
    );
    let fire2 = FireId::new(j2.clone(), t2);
    assert_eq!(
        b.commit_fires("B", 2, &[t2], &j2_job)
            .await
            .expect("commit"),
        Commit::Committed {
            created: vec![fire2.clone()]
        }
    );

    // The same slot again (a node that believes it owns j2 with a stale next run time):
    // the fire exists, so nothing is created, and the new slot is.
    let mut stale = j2_job.clone();
    stale.next_run_time = Some(t2);
    a.update_job(stale).await.expect("rewind");
    let claims = a.claim_due("A", now, LONG, 10).await.expect("claim");
    assert_eq!(ids(&claims), ["j2"]);
    assert_eq!(claims[0].epoch, 3);
    let t2b = t2 + TimeDelta::seconds(1);
    assert_eq!(
        a.commit_fires("A", 3, &[t2, t2b], &j2_job)
            .await
            .expect("commit"),
        Commit::Committed {
            created: vec![FireId::new(j2.clone(), t2b)]
        }
    );

    // A lease ends on the store's clock: then another node takes the job over, and the
    // first holder's renewals and writes find nothing.
    a.add_job(job("j4", Some(t1), trigger)).await.expect("add");
    let claims = a
        .claim_due("A", now, Duration::from_millis(300), 10)
        .await
        .expect("claim");
    assert_eq!(ids(&claims), ["j4"]);
    let expires = claims[0].expires_at;
    assert!(
        b.claim_due("B", now, LONG, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.store_time().await.expect("time") <= expires {
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.renew("A", LONG).await.expect("renew"), 0);
    let taken = b.claim_due("B", now, LONG, 10).await.expect("claim");
    assert_eq!(ids(&taken), ["j4"]);
    assert_eq!(taken[0].epoch, 2);
    assert_eq!(
        a.commit_fires("A", 1, &[t1], &claims[0].job)
            .await
            .expect("commit"),
        Commit::Lost
    );

    // Renewal extends live leases; a graceful shutdown releases them all.
    assert_eq!(b.renew("B", LONG).await.expect("renew"), 1);
    assert_eq!(b.release_all("B").await.expect("release all"), 1);
    let again = a.claim_due("A", now, LONG, 10).await.expect("claim");
    assert_eq!(ids(&again), ["j4"]);
    assert_eq!(again[0].epoch, 3);
    assert_eq!(a.release_all("A").await.expect("release all"), 1);
}

#[tokio::test]
async fn postgres_leases_are_fenced_and_fires_created_once() {
    let Some(url) = server_url("SCHED_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = unique("sched_lease_");
    let admin = PostgresStore::connect(&url).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(admin.pool())
        .await
        .expect("schema");
    let options = StoreOptions::new()
        .schema(schema.clone())
        .shared_codec(codec_and_trigger().0);
    let a = PostgresStore::connect_with(&url, options.clone())
        .await
        .expect("a");
    let b = PostgresStore::connect_with(&url, options).await.expect("b");
    assert_eq!(a.schema_version().await.expect("version"), 2);
    contract(&a, &b).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(admin.pool())
    .await
    .expect("drop");
}

#[tokio::test]
async fn mysql_leases_are_fenced_and_fires_created_once() {
    let Some(url) = server_url("SCHED_TEST_MYSQL_URL") else {
        return;
    };
    let db = unique("sched_lease_");
    let admin = MySqlStore::connect(&url).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{db}`")))
        .execute(admin.pool())
        .await
        .expect("database");
    let options = StoreOptions::new()
        .schema(db.clone())
        .shared_codec(codec_and_trigger().0);
    let a = MySqlStore::connect_with(&url, options.clone())
        .await
        .expect("a");
    let b = MySqlStore::connect_with(&url, options).await.expect("b");
    assert_eq!(a.schema_version().await.expect("version"), 2);
    contract(&a, &b).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{db}`")))
        .execute(admin.pool())
        .await
        .expect("drop");
}

#[tokio::test]
async fn redis_leases_are_fenced_and_fires_created_once() {
    let Some(url) = server_url("SCHED_TEST_REDIS_URL") else {
        return;
    };
    let prefix = format!("{}:", unique("sched_lease_"));
    let options = StoreOptions::new()
        .prefix(prefix.clone())
        .shared_codec(codec_and_trigger().0);
    let a = RedisStore::connect_with(&url, options.clone())
        .await
        .expect("a");
    let b = RedisStore::connect_with(&url, options).await.expect("b");
    contract(&a, &b).await;
    let mut conn = a.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    if !keys.is_empty() {
        let () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .expect("del");
    }
}
