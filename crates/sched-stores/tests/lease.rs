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
async fn leases_are_fenced_and_fires_created_once<S: LeaseStore>(a: &S, b: &S) {
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

    assert!(b.finish_fire("B", 2, &fire2, "ok").await.expect("finish"));

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

// ---------------------------------------------------------------------------------------
// Nodes, adoption, batches, max_instances, pruning and notifications: each behaviour is a
// function of two handles `a` and `b` on one store (two nodes), run once per backend by
// `per_backend!`. Time is the store's: short registrations, and waits on a condition with
// a deadline.
// ---------------------------------------------------------------------------------------

use std::future::Future;
use std::pin::Pin;

use chrono::DateTime;
use sched_core::job::Job;
use sched_stores::{
    BoxLeaseStore, ChangeFeed, CommitRequest, Finished, JobStore, NodeInfo, StoreErrorKind,
};

/// A store pair and what removes its schema, database or keys afterwards.
struct Pair<S> {
    a: S,
    b: S,
    cleanup: Pin<Box<dyn Future<Output = ()> + Send>>,
}

async fn postgres_pair() -> Option<Pair<PostgresStore>> {
    let url = server_url("SCHED_TEST_POSTGRES_URL")?;
    let schema = unique("sched_lease_");
    let admin = PostgresStore::connect(&url).await.expect("connect");
    common::create_pg_schema(admin.pool(), &schema).await;
    let options = StoreOptions::new()
        .schema(schema.clone())
        .shared_codec(codec_and_trigger().0);
    let a = PostgresStore::connect_with(&url, options.clone())
        .await
        .expect("a");
    let b = PostgresStore::connect_with(&url, options).await.expect("b");
    let cleanup = Box::pin(async move {
        common::drop_pg_schema(admin.pool(), &schema).await;
    });
    Some(Pair { a, b, cleanup })
}

async fn mysql_pair() -> Option<Pair<MySqlStore>> {
    let url = server_url("SCHED_TEST_MYSQL_URL")?;
    let db = unique("sched_lease_");
    let admin = MySqlStore::connect(&url).await.expect("connect");
    common::create_mysql_database(admin.pool(), &db).await;
    let options = StoreOptions::new()
        .schema(db.clone())
        .shared_codec(codec_and_trigger().0);
    let a = MySqlStore::connect_with(&url, options.clone())
        .await
        .expect("a");
    let b = MySqlStore::connect_with(&url, options).await.expect("b");
    let cleanup = Box::pin(async move {
        common::drop_mysql_database(admin.pool(), &db).await;
    });
    Some(Pair { a, b, cleanup })
}

async fn redis_pair() -> Option<Pair<RedisStore>> {
    let url = server_url("SCHED_TEST_REDIS_URL")?;
    let prefix = format!("{}:", unique("sched_lease_"));
    let options = StoreOptions::new()
        .prefix(prefix.clone())
        .shared_codec(codec_and_trigger().0);
    let a = RedisStore::connect_with(&url, options.clone())
        .await
        .expect("a");
    let b = RedisStore::connect_with(&url, options).await.expect("b");
    let mut conn = a.connection();
    let cleanup = Box::pin(async move {
        common::delete_redis_keys(&mut conn, &prefix).await;
    });
    Some(Pair { a, b, cleanup })
}

/// One test per backend running `$behaviour(&a, &b)`.
macro_rules! per_backend {
    ($behaviour:ident) => {
        per_backend!($behaviour: postgres_pair, mysql_pair, redis_pair);
    };
    ($behaviour:ident: $($pair:ident),+) => {
        mod $behaviour {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $pair() {
                    let Some(pair) = super::$pair().await else {
                        return;
                    };
                    super::$behaviour(&pair.a, &pair.b).await;
                    pair.cleanup.await;
                }
            )+
        }
    };
}

per_backend!(leases_are_fenced_and_fires_created_once);

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.to_owned(),
        host: "test-host".to_owned(),
        pid: 4242,
        started_at: Utc::now() - TimeDelta::seconds(60),
    }
}

/// Waits until the store's clock is past `t` (10 s at most).
async fn store_passes<S: LeaseStore>(s: &S, t: DateTime<Utc>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.store_time().await.expect("time") <= t {
        assert!(
            std::time::Instant::now() < deadline,
            "the store clock never passed {t}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Adds jobs `ids` due a minute ago (`max_instances` each).
async fn add_due<S: LeaseStore>(s: &S, ids: &[&str], max_instances: u32) -> DateTime<Utc> {
    let trigger = codec_and_trigger().1;
    let slot = s.store_time().await.expect("time") - TimeDelta::seconds(60);
    let jobs = ids
        .iter()
        .map(|id| {
            let mut j = job(id, Some(slot), trigger);
            j.max_instances = max_instances;
            j
        })
        .collect();
    s.add_jobs(jobs).await.expect("add");
    slot
}

/// `node` claims every due job and commits its stored slot, pausing the job: the fires
/// created, with their epochs.
async fn fire_due<S: LeaseStore>(s: &S, node: &str) -> Vec<(FireId, i64)> {
    let now = s.store_time().await.expect("time");
    let claims = s.claim_due(node, now, LONG, 1000).await.expect("claim");
    let (slots, advanced) = common::stored_slots(&claims, |_| None);
    let batch = common::commit_requests(&claims, &slots, &advanced);
    let answers = s.commit_many(node, &batch).await.expect("commit");
    claims
        .iter()
        .zip(answers)
        .flat_map(|(c, answer)| match answer {
            Commit::Committed { created } => created
                .into_iter()
                .map(|f| (f, c.epoch))
                .collect::<Vec<_>>(),
            other => panic!("{}: {other:?}", c.job.id),
        })
        .collect()
}

fn finished(fire: &FireId, epoch: i64) -> Finished {
    Finished {
        epoch,
        fire: fire.clone(),
        outcome: "ok".to_owned(),
    }
}

/// Registration, heartbeat times and skew on the store's clock, lapse after the TTL.
async fn heartbeat_registers_and_reports_lapse<S: LeaseStore>(a: &S, _b: &S) {
    let info = node("A");
    let ahead = Utc::now() + TimeDelta::seconds(2);
    let first = a.heartbeat(&info, ahead, LONG).await.expect("heartbeat");
    assert!(first.lapsed, "a first registration counts as lapsed");
    let span = first.expires_at - first.store_time;
    assert_eq!(span, TimeDelta::seconds(30));
    let second = a
        .heartbeat(&info, Utc::now(), LONG)
        .await
        .expect("heartbeat");
    assert!(!second.lapsed);
    assert!(second.store_time >= first.store_time);

    let nodes = a.nodes().await.expect("nodes");
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let n = &nodes[0];
    assert_eq!(
        (n.id.as_str(), n.host.as_str(), n.pid),
        ("A", "test-host", 4242)
    );
    assert_eq!(
        n.started_at.timestamp_micros(),
        info.started_at.timestamp_micros()
    );
    assert!(n.alive);
    assert_eq!(n.heartbeat_at, second.store_time);
    assert_eq!(n.expires_at, second.expires_at);
    // The second heartbeat said "now": the skew is the store's clock against this
    // machine's (the same clock here) plus the call's latency.
    assert!(
        n.clock_skew.abs() < TimeDelta::seconds(1),
        "{:?}",
        n.clock_skew
    );
    let ahead = a
        .heartbeat(&info, Utc::now() + TimeDelta::seconds(2), LONG)
        .await
        .expect("hb");
    assert!(!ahead.lapsed);
    let skew = a.nodes().await.expect("nodes")[0].clock_skew;
    assert!(
        skew > TimeDelta::seconds(1) && skew < TimeDelta::seconds(3),
        "a node 2 s ahead: {skew:?}"
    );

    // A short registration ends on the store's clock: listed as not alive, and the next
    // heartbeat reports the lapse.
    let short = a
        .heartbeat(&info, Utc::now(), Duration::from_millis(200))
        .await
        .expect("heartbeat");
    assert!(!short.lapsed);
    store_passes(a, short.expires_at).await;
    assert!(!a.nodes().await.expect("nodes")[0].alive);
    assert!(
        a.heartbeat(&info, Utc::now(), LONG)
            .await
            .expect("hb")
            .lapsed
    );

    // Bad input is an error naming the problem, not a panic.
    let err = a
        .heartbeat(&node(""), Utc::now(), LONG)
        .await
        .expect_err("empty id");
    assert_eq!(err.kind(), StoreErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("node id"), "{err}");
}
per_backend!(heartbeat_registers_and_reports_lapse);

/// A graceful shutdown removes the registration and hands unfinished fires to adoption.
async fn unregister_removes_a_node<S: LeaseStore>(a: &S, b: &S) {
    a.heartbeat(&node("A"), Utc::now(), LONG).await.expect("hb");
    b.heartbeat(&node("B"), Utc::now(), LONG).await.expect("hb");
    add_due(a, &["u1"], 1).await;
    let fires = fire_due(a, "A").await;
    assert_eq!(fires.len(), 1);
    assert!(b.adopt_fires("B", 10).await.expect("adopt").is_empty());

    assert!(a.unregister_node("A").await.expect("unregister"));
    assert!(!a.unregister_node("A").await.expect("again"));
    let ids: Vec<String> = a
        .nodes()
        .await
        .expect("nodes")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, ["B"]);
    let running = a.running_fires().await.expect("running");
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].node, "", "waiting for adoption");
    let adopted = b.adopt_fires("B", 10).await.expect("adopt");
    assert_eq!(adopted.len(), 1);
    assert_eq!(adopted[0].fire, fires[0].0);
}
per_backend!(unregister_removes_a_node);

/// Running fires: every created and unfinished fire, with node, epoch and creation time.
async fn running_fires_lists_unfinished<S: LeaseStore>(a: &S, b: &S) {
    assert!(a.running_fires().await.expect("running").is_empty());
    let before = a.store_time().await.expect("time");
    add_due(a, &["r1", "r2"], 1).await;
    let mut fires = fire_due(a, "A").await;
    fires.sort();
    assert_eq!(fires.len(), 2);
    assert!(
        a.finish_fire("A", fires[0].1, &fires[0].0, "ok")
            .await
            .expect("finish")
    );
    let after = a.store_time().await.expect("time");

    let running = b.running_fires().await.expect("running");
    assert_eq!(running.len(), 1, "{running:?}");
    let r = &running[0];
    assert_eq!(r.fire, fires[1].0);
    assert_eq!((r.node.as_str(), r.epoch), ("A", fires[1].1));
    assert!(r.created_at >= before && r.created_at <= after, "{r:?}");
}
per_backend!(running_fires_lists_unfinished);

/// Adopts until nothing is left, three at a time.
async fn adopt_all<S: LeaseStore>(s: &S, node: &str) -> Vec<sched_stores::Adopted> {
    let mut all = Vec::new();
    loop {
        let got = s.adopt_fires(node, 3).await.expect("adopt");
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

/// Adoption takes only the fires of a node whose registration expired (or that left),
/// never those of a live node or of one that never registered, and two adopters at once
/// never get the same fire; the old holder's finish is refused afterwards.
async fn adoption_takes_expired_nodes_fires_once<S: LeaseStore>(a: &S, b: &S) {
    let ids: Vec<String> = (0..20).map(|i| format!("ad{i:02}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let dying = a
        .heartbeat(&node("A"), Utc::now(), Duration::from_millis(1500))
        .await
        .expect("hb");
    b.heartbeat(&node("B"), Utc::now(), LONG).await.expect("hb");
    b.heartbeat(&node("C"), Utc::now(), LONG).await.expect("hb");
    add_due(a, &ids, 1).await;
    let fires = fire_due(a, "A").await;
    assert_eq!(fires.len(), 20);
    // A fire of a node that never registered (not in cluster mode) is never adopted.
    add_due(a, &["stray"], 1).await;
    let stray = fire_due(a, "X").await;
    assert_eq!(stray.len(), 1);
    // One job is removed before it is adopted: its fire comes without a job.
    a.remove_job(&JobId::new("ad00").unwrap())
        .await
        .expect("remove");

    // A is alive: nothing to adopt; an unregistered adopter adopts nothing either.
    assert!(b.adopt_fires("B", 100).await.expect("adopt").is_empty());
    store_passes(a, dying.expires_at).await;
    assert!(b.adopt_fires("D", 100).await.expect("adopt").is_empty());

    // B and C at once, in small bites.
    let (by_b, by_c) = tokio::join!(adopt_all(a, "B"), adopt_all(b, "C"));
    let mut seen: Vec<FireId> = by_b.iter().chain(&by_c).map(|x| x.fire.clone()).collect();
    seen.sort();
    let mut expected: Vec<FireId> = fires.iter().map(|f| f.0.clone()).collect();
    expected.sort();
    assert_eq!(seen, expected, "each of A's fires adopted exactly once");
    for x in by_b.iter().chain(&by_c) {
        let old = fires.iter().find(|f| f.0 == x.fire).expect("one of A's").1;
        assert_eq!(x.epoch, old + 1, "{:?}", x.fire);
        assert_eq!(
            x.job.is_none(),
            x.fire.job.as_str() == "ad00",
            "{:?}",
            x.fire
        );
    }
    // The old holder's finish is refused; the adopter's is recorded.
    let (f, old) = (&fires[3].0, fires[3].1);
    assert!(!a.finish_fire("A", old, f, "late").await.expect("finish"));
    let (holder, x) = match by_b.iter().find(|x| x.fire == *f) {
        Some(x) => ("B", x),
        None => ("C", by_c.iter().find(|x| x.fire == *f).expect("adopted")),
    };
    assert!(
        b.finish_fire(holder, x.epoch, f, "ok")
            .await
            .expect("finish")
    );
    let running = a.running_fires().await.expect("running");
    assert!(
        running
            .iter()
            .any(|r| r.fire == stray[0].0 && r.node == "X")
    );
    assert!(running.iter().all(|r| r.node != "A"));

    // A comes back: its heartbeat says it lapsed, so it cancels what it still runs.
    assert!(
        a.heartbeat(&node("A"), Utc::now(), LONG)
            .await
            .expect("hb")
            .lapsed
    );
}
per_backend!(adoption_takes_expired_nodes_fires_once);

/// A lapsed node's next heartbeat hands its unfinished fires over at once (node `""`),
/// so its own finishes of them are refused and another node adopts them.
async fn a_lapsed_heartbeat_hands_fires_over<S: LeaseStore>(a: &S, b: &S) {
    let short = a
        .heartbeat(&node("A"), Utc::now(), Duration::from_millis(200))
        .await
        .expect("hb");
    b.heartbeat(&node("B"), Utc::now(), LONG).await.expect("hb");
    add_due(a, &["l1"], 1).await;
    let fires = fire_due(a, "A").await;
    store_passes(a, short.expires_at).await;
    assert!(
        a.heartbeat(&node("A"), Utc::now(), LONG)
            .await
            .expect("hb")
            .lapsed
    );
    let running = a.running_fires().await.expect("running");
    assert_eq!(running[0].node, "");
    assert!(
        !a.finish_fire("A", fires[0].1, &fires[0].0, "x")
            .await
            .expect("finish")
    );
    // A is alive again, yet the fire it gave up is adoptable (by A itself, too).
    let adopted = b.adopt_fires("B", 10).await.expect("adopt");
    assert_eq!(adopted.len(), 1);
    assert!(
        b.finish_fire("B", adopted[0].epoch, &fires[0].0, "ok")
            .await
            .expect("finish")
    );
}
per_backend!(a_lapsed_heartbeat_hands_fires_over);

/// One batch: an item committed, one lost (stale epoch), one refused (max_instances), a
/// repeat of the first (lost), and an item without slots (committed, nothing created).
async fn commit_many_mixes_outcomes<S: LeaseStore>(a: &S, b: &S) {
    add_due(a, &["busy"], 1).await;
    let busy = fire_due(a, "A").await;
    assert_eq!(busy.len(), 1);
    // `busy` has an unfinished fire: make it due again.
    let mut again = a
        .lookup_job(&JobId::new("busy").unwrap())
        .await
        .expect("get")
        .expect("busy");
    let slot = add_due(a, &["ok", "stale", "quiet"], 1).await;
    again.next_run_time = Some(slot);
    a.update_job(again).await.expect("due again");

    let now = a.store_time().await.expect("time");
    let claims = a.claim_due("A", now, LONG, 10).await.expect("claim");
    assert_eq!(ids(&claims), ["busy", "ok", "quiet", "stale"]);
    let later = now + TimeDelta::hours(1);
    let advanced: Vec<Job> = claims
        .iter()
        .map(|c| {
            let mut j = c.job.clone();
            j.next_run_time = Some(later);
            j
        })
        .collect();
    let slots = [slot];
    let by = |id: &str| claims.iter().position(|c| c.job.id.as_str() == id).unwrap();
    let (busy_i, ok_i, quiet_i, stale_i) = (by("busy"), by("ok"), by("quiet"), by("stale"));
    let batch = [
        CommitRequest {
            epoch: claims[ok_i].epoch,
            slots: &slots,
            job: &advanced[ok_i],
        },
        CommitRequest {
            epoch: claims[stale_i].epoch + 7,
            slots: &slots,
            job: &advanced[stale_i],
        },
        CommitRequest {
            epoch: claims[busy_i].epoch,
            slots: &slots,
            job: &advanced[busy_i],
        },
        CommitRequest {
            epoch: claims[ok_i].epoch,
            slots: &slots,
            job: &advanced[ok_i],
        },
        CommitRequest {
            epoch: claims[quiet_i].epoch,
            slots: &[],
            job: &advanced[quiet_i],
        },
    ];
    let answers = a.commit_many("A", &batch).await.expect("commit");
    assert_eq!(
        answers,
        [
            Commit::Committed {
                created: vec![FireId::new(JobId::new("ok").unwrap(), slot)]
            },
            Commit::Lost,
            Commit::Refused,
            Commit::Lost,
            Commit::Committed { created: vec![] },
        ]
    );
    // Refused and committed items advanced their jobs and released their leases; the lost
    // one did neither.
    for (id, next) in [
        ("ok", Some(later)),
        ("busy", Some(later)),
        ("quiet", Some(later)),
        ("stale", Some(slot)),
    ] {
        let stored = b
            .lookup_job(&JobId::new(id).unwrap())
            .await
            .expect("get")
            .expect("job");
        assert_eq!(
            stored.next_run_time.map(|t| t.timestamp_micros()),
            next.map(|t| t.timestamp_micros()),
            "{id}"
        );
    }
    assert!(
        b.claim_due("B", now, LONG, 10)
            .await
            .expect("claim")
            .is_empty(),
        "stale is still A's"
    );
    assert_eq!(
        b.running_fires().await.expect("running").len(),
        2,
        "busy's first and ok's"
    );
    assert!(a.commit_many("A", &[]).await.expect("empty").is_empty());
}
per_backend!(commit_many_mixes_outcomes);

/// max_instances counts the unfinished fires on every node: B is refused while A still
/// runs the job's fire, and admitted once A finished it.
async fn max_instances_holds_across_nodes<S: LeaseStore>(a: &S, b: &S) {
    let slot = add_due(a, &["m"], 1).await;
    let first = fire_due(a, "A").await;
    assert_eq!(first.len(), 1);
    let id = JobId::new("m").unwrap();
    let due_again = |slot: DateTime<Utc>| async move {
        let mut j = a
            .lookup_job(&JobId::new("m").unwrap())
            .await
            .expect("get")
            .expect("m");
        j.next_run_time = Some(slot);
        a.update_job(j).await.expect("due again");
    };
    let second = slot + TimeDelta::seconds(1);
    due_again(second).await;
    let now = b.store_time().await.expect("time");
    let claims = b.claim_due("B", now, LONG, 10).await.expect("claim");
    assert_eq!(ids(&claims), ["m"]);
    let mut advanced = claims[0].job.clone();
    advanced.next_run_time = Some(second + TimeDelta::seconds(1));
    assert_eq!(
        b.commit_fires("B", claims[0].epoch, &[second], &advanced)
            .await
            .expect("commit"),
        Commit::Refused
    );
    let stored = b.lookup_job(&id).await.expect("get").expect("m");
    assert_eq!(
        stored.next_run_time, advanced.next_run_time,
        "the schedule advanced"
    );

    assert!(
        a.finish_fire("A", first[0].1, &first[0].0, "ok")
            .await
            .expect("finish")
    );
    let claims = b
        .claim_due("B", now + TimeDelta::seconds(5), LONG, 10)
        .await
        .expect("claim");
    assert_eq!(
        ids(&claims),
        ["m"],
        "the lease was released by the refused commit"
    );
    let third = second + TimeDelta::seconds(1);
    advanced.next_run_time = None;
    assert_eq!(
        b.commit_fires("B", claims[0].epoch, &[third], &advanced)
            .await
            .expect("commit"),
        Commit::Committed {
            created: vec![FireId::new(id.clone(), third)]
        }
    );
}
per_backend!(max_instances_holds_across_nodes);

/// A batch of finishes: the ones the node holds at that epoch are recorded, once.
async fn finish_fires_records_a_batch<S: LeaseStore>(a: &S, b: &S) {
    add_due(a, &["f1", "f2", "f3"], 1).await;
    let fires = fire_due(a, "A").await;
    assert_eq!(fires.len(), 3);
    let mut done: Vec<Finished> = fires.iter().map(|(f, e)| finished(f, *e)).collect();
    done.push(finished(&fires[0].0, fires[0].1 + 1));
    done.push(finished(
        &FireId::new(JobId::new("nope").unwrap(), Utc::now()),
        1,
    ));
    assert_eq!(
        b.finish_fires("B", &done).await.expect("finish"),
        0,
        "not B's"
    );
    assert_eq!(a.finish_fires("A", &done).await.expect("finish"), 3);
    assert_eq!(a.finish_fires("A", &done).await.expect("again"), 0);
    assert!(a.running_fires().await.expect("running").is_empty());
    assert_eq!(a.finish_fires("A", &[]).await.expect("none"), 0);
}
per_backend!(finish_fires_records_a_batch);

/// Pruning deletes old finished fires, the ended leases of removed jobs and long-expired
/// registrations without fires, a limited number per kind, and never an unfinished fire.
async fn prune_keeps_unfinished_fires<S: LeaseStore>(a: &S, b: &S) {
    let gone = a
        .heartbeat(&node("gone"), Utc::now(), Duration::from_millis(100))
        .await
        .expect("hb");
    let busy = a
        .heartbeat(&node("busy"), Utc::now(), Duration::from_millis(100))
        .await
        .expect("hb");
    add_due(a, &["p1", "p2", "p3", "p4"], 1).await;
    let mut fires = fire_due(a, "A").await;
    fires.sort();
    let done: Vec<Finished> = fires[..3].iter().map(|(f, e)| finished(f, *e)).collect();
    assert_eq!(a.finish_fires("A", &done).await.expect("finish"), 3);
    add_due(a, &["p5"], 1).await;
    let busy_fire = fire_due(a, "busy").await;
    // A removed job whose lease record stays behind.
    add_due(a, &["removed"], 1).await;
    let now = a.store_time().await.expect("time");
    let claims = a.claim_due("A", now, LONG, 10).await.expect("claim");
    assert!(
        a.release("A", &claims[0].job.id, claims[0].epoch)
            .await
            .expect("release")
    );
    a.remove_job(&claims[0].job.id).await.expect("remove");
    store_passes(a, gone.expires_at.max(busy.expires_at)).await;

    let cutoff = a.store_time().await.expect("time") + TimeDelta::milliseconds(1);
    // Two per kind: two finished fires, one lease record, one node.
    assert_eq!(b.prune(cutoff, 2).await.expect("prune"), 4);
    assert_eq!(
        b.prune(cutoff, 2).await.expect("prune"),
        1,
        "the third finished fire"
    );
    assert_eq!(b.prune(cutoff, 2).await.expect("prune"), 0);
    let running: Vec<FireId> = a
        .running_fires()
        .await
        .expect("running")
        .into_iter()
        .map(|r| r.fire)
        .collect();
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(running.contains(&fires[3].0) && running.contains(&busy_fire[0].0));
    let nodes: Vec<String> = a
        .nodes()
        .await
        .expect("nodes")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(
        nodes,
        ["busy"],
        "a node with an unfinished fire stays, to be adopted"
    );
    assert_eq!(a.prune(cutoff, 0).await.expect("limit 0"), 0);
}
per_backend!(prune_keeps_unfinished_fires);

/// Waits for the next item of a feed (10 s at most).
async fn next_change(feed: &mut ChangeFeed) -> Option<()> {
    let next = std::future::poll_fn(|cx| futures_core::Stream::poll_next(feed.as_mut(), cx));
    tokio::time::timeout(Duration::from_secs(10), next)
        .await
        .expect("a notification within 10 s")
}

/// A notification sent through one handle reaches a feed opened on the other.
async fn notifications_reach_another_handle<S: LeaseStore>(a: &S, b: &S) {
    let mut feed = b.changes().await.expect("changes").expect("a feed");
    a.notify_changed().await.expect("notify");
    assert_eq!(next_change(&mut feed).await, Some(()));
    a.notify_changed().await.expect("notify");
    assert_eq!(next_change(&mut feed).await, Some(()));
    // Another feed on the sending handle hears it too.
    let mut own = a.changes().await.expect("changes").expect("a feed");
    b.notify_changed().await.expect("notify");
    assert_eq!(next_change(&mut own).await, Some(()));
}
per_backend!(notifications_reach_another_handle: postgres_pair, redis_pair);

#[tokio::test]
async fn mysql_has_no_change_feed() {
    let Some(pair) = mysql_pair().await else {
        return;
    };
    pair.a.notify_changed().await.expect("a no-op");
    assert!(pair.b.changes().await.expect("changes").is_none());
    pair.cleanup.await;
}

/// The boxed store is the same store under both views.
async fn boxed_store_is_one_store<S: LeaseStore>(a: S, b: &S) {
    let boxed = BoxLeaseStore::new(a);
    let jobs = boxed.as_job_store();
    let trigger = codec_and_trigger().1;
    let now = boxed.store_time().await.expect("time");
    jobs.add_job(job("bx", Some(now - TimeDelta::seconds(1)), trigger))
        .await
        .expect("add through the job view");
    assert!(
        boxed
            .lookup_job(&JobId::new("bx").unwrap())
            .await
            .expect("get")
            .is_some()
    );
    boxed
        .heartbeat(&node("A"), Utc::now(), LONG)
        .await
        .expect("hb");
    let fires = fire_due(&boxed, "A").await;
    assert_eq!(fires.len(), 1);
    assert_eq!(
        b.running_fires().await.expect("running")[0].fire,
        fires[0].0
    );
    assert_eq!(
        boxed
            .clone()
            .into_job_store()
            .all_jobs()
            .await
            .expect("all")
            .len(),
        1
    );
    assert!(format!("{boxed:?}").contains("BoxLeaseStore"));
}

mod boxed_store_is_one_store {
    #[tokio::test]
    async fn postgres_pair() {
        if let Some(pair) = super::postgres_pair().await {
            super::boxed_store_is_one_store(pair.a, &pair.b).await;
            pair.cleanup.await;
        }
    }

    #[tokio::test]
    async fn mysql_pair() {
        if let Some(pair) = super::mysql_pair().await {
            super::boxed_store_is_one_store(pair.a, &pair.b).await;
            pair.cleanup.await;
        }
    }

    #[tokio::test]
    async fn redis_pair() {
        if let Some(pair) = super::redis_pair().await {
            super::boxed_store_is_one_store(pair.a, &pair.b).await;
            pair.cleanup.await;
        }
    }
}

/// A feed survives the loss of its connection: after the server ends the listening
/// session, the feed reconnects by itself, yields one `()` (notifications may have been
/// missed) and then delivers notifications again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_change_feed_reconnects() {
    let Some(pair) = postgres_pair().await else {
        return;
    };
    let mut feed = pair.b.changes().await.expect("changes").expect("a feed");
    pair.a.notify_changed().await.expect("notify");
    assert_eq!(next_change(&mut feed).await, Some(()));
    // End the listening session (its last statement named this store's unique channel).
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN %' AND query LIKE '%' || $1 || '%'",
    )
    .bind(
        pair.a
            .jobs_table()
            .split('.')
            .next()
            .unwrap_or("")
            .trim_matches('"'),
    )
    .fetch_all(pair.a.pool())
    .await
    .expect("terminate");
    assert_eq!(ended, [true], "one listening session ended");
    assert_eq!(
        next_change(&mut feed).await,
        Some(()),
        "the wake-up after reconnecting"
    );
    pair.a.notify_changed().await.expect("notify");
    assert_eq!(next_change(&mut feed).await, Some(()));
    pair.cleanup.await;
}

/// A Redis store of layout 1 (fires written before the fire indexes existed) is upgraded
/// on open: its unfinished fires are listed, counted for max_instances and adoptable, and
/// its finished ones pruned.
#[tokio::test]
async fn redis_layout_1_fires_are_indexed_on_upgrade() {
    let Some(url) = server_url("SCHED_TEST_REDIS_URL") else {
        return;
    };
    let prefix = format!("{}:", unique("sched_lease_"));
    let options = StoreOptions::new()
        .prefix(prefix.clone())
        .shared_codec(codec_and_trigger().0);
    let first = RedisStore::connect_with(&url, options.clone())
        .await
        .expect("first");
    add_due(&first, &["old"], 1).await;
    let now = first.store_time().await.expect("time").timestamp_micros();
    let mut conn = first.connection();
    // What a layout-1 node left: one unfinished fire, one finished an hour ago, no indexes.
    let () = redis::cmd("HSET")
        .arg(format!("{prefix}fires"))
        .arg(format!("old\n{}", now - 2_000_000))
        .arg(format!("gone-node\t3\t{}", now - 1_000_000))
        .arg(format!("old\n{}", now - 9_000_000_000))
        .arg(format!(
            "gone-node\t2\t{}\t{}\tok",
            now - 8_000_000_000,
            now - 3_600_000_000
        ))
        .query_async(&mut conn)
        .await
        .expect("fires");
    let () = redis::cmd("DEL")
        .arg(format!("{prefix}fires_running"))
        .arg(format!("{prefix}fires_done"))
        .arg(format!("{prefix}fires_running_jobs"))
        .query_async(&mut conn)
        .await
        .expect("no indexes");
    let () = redis::cmd("SET")
        .arg(format!("{prefix}schema_version"))
        .arg(1)
        .query_async(&mut conn)
        .await
        .expect("layout 1");

    let store = RedisStore::connect_with(&url, options)
        .await
        .expect("upgrade");
    assert_eq!(store.schema_version().await.expect("version"), 2);
    let running = store.running_fires().await.expect("running");
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(
        (running[0].node.as_str(), running[0].epoch),
        ("gone-node", 3)
    );
    // It counts for max_instances.
    let claims = store
        .claim_due("A", Utc::now(), LONG, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&claims), ["old"]);
    let slot = claims[0].job.next_run_time.expect("due");
    assert_eq!(
        store
            .commit_fires("A", claims[0].epoch, &[slot], &claims[0].job)
            .await
            .expect("commit"),
        Commit::Refused
    );
    // The finished one is pruned; the unfinished one is not.
    let cutoff = store.store_time().await.expect("time") - TimeDelta::minutes(1);
    assert_eq!(store.prune(cutoff, 10).await.expect("prune"), 1);
    assert_eq!(store.running_fires().await.expect("running").len(), 1);
    drop(first);
    common::delete_redis_keys(&mut conn, &prefix).await;
}
