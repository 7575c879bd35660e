//! [`LeaseStore`] for Redis: every operation is one Lua script, timed by `TIME`.
//!
//! # Keys
//! Beside the store's keys, with the default prefix `sched:` (each key is derived from the
//! jobs key, so a hash-tagged prefix keeps them in one slot):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `sched:lease_epoch` | hash | job id → claim counter (never reset while the job exists) |
//! | `sched:lease_node` | hash | job id → node holding the lease (deleted on release) |
//! | `sched:lease_until` | hash | job id → lease deadline, µs on the server's `TIME` |
//! | `sched:fires` | hash | `"<job id>\n<slot µs>"` → `node\tepoch\tcreated µs[\tfinished µs\toutcome]`, created with `HSETNX`; `node` is empty while the fire waits for adoption |
//! | `sched:fires_running` | sorted set | the unfinished fires (`"<job id>\n<slot µs>"`), scored by creation time |
//! | `sched:fires_done` | sorted set | the finished fires, scored by finish time (pruning) |
//! | `sched:fires_running_jobs` | hash | job id → its number of unfinished fires (max_instances) |
//! | `sched:nodes` | hash | node id → JSON `{host, pid, started, heartbeat, expires, skew}` (µs as strings) |
//! | `sched:lease_prune_cursor` | string | where pruning continues its `HSCAN` of `lease_epoch` |
//! | `sched:changes` | pub/sub channel | change notifications |
//!
//! Layout version 2 (`sched:schema_version`) is the one with the three fire indexes
//! (`fires_running`, `fires_done`, `fires_running_jobs`): they cannot be told from their
//! absence, so opening a store of layout 1 builds them from the fires hash, under the
//! migration lock, before recording version 2. The other keys mean "nothing" when absent.
//! Nodes of a release before layout 2 do not keep the indexes: they must not run lease
//! operations on a store of layout 2 (no release before it had a cluster mode).

use std::pin::Pin;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_core::Stream;
use redis::{RedisError, Script};
use sched_core::job::{Job, JobId};
use serde_json::Value;

use super::{
    Adopted, ChangeFeed, Claim, Commit, CommitRequest, Finished, FireId, Heartbeat, LeaseStore,
    NodeInfo, NodeRecord, RunningFire, check_node, feed, from_micros, lease_micros,
};
use crate::StoreError;
use crate::redis::RedisStore;

/// The prelude of every script: the server's clock, and helpers over the keys, which every
/// script receives in this order: 1 jobs, 2 run times, 3 quarantine, 4 lease epoch,
/// 5 lease node, 6 lease until, 7 fires, 8 running fires, 9 finished fires, 10 running
/// counts, 11 nodes, 12 prune cursor.
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function us(x) return string.format('%.0f', x) end
local function held(id, node, epoch)
  return redis.call('HGET', KEYS[5], id) == node and redis.call('HGET', KEYS[4], id) == epoch
    and tonumber(redis.call('HGET', KEYS[6], id) or '0') > now
end
local function parse(v)
  return string.match(v, '^([^\t]*)\t([^\t]*)\t([^\t]*)(.*)$')
end
local function fire_job(f)
  return string.match(f, '^(.*)\n[^\n]*$')
end
local function node_expires(id)
  local r = redis.call('HGET', KEYS[11], id)
  if not r then return nil end
  return tonumber(cjson.decode(r).expires)
end
local function orphan(node)
  for _, f in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
    local v = redis.call('HGET', KEYS[7], f)
    if v then
      local n, e, c, rest = parse(v)
      if n == node then redis.call('HSET', KEYS[7], f, '\t' .. e .. '\t' .. c .. rest) end
    end
  end
end
"#;

const CLAIM: &str = r#"
local limit = tonumber(ARGV[2])
local deadline = now + tonumber(ARGV[4])
local out = {us(deadline)}
local claimed, offset, page = 0, 0, math.max(limit, 100)
while claimed < limit and offset < limit * 10 + 1000 do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', offset, page)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local u = tonumber(redis.call('HGET', KEYS[6], id) or '0')
    if u <= now then
      local data = redis.call('HGET', KEYS[1], id)
      if data then
        local e = redis.call('HINCRBY', KEYS[4], id, 1)
        redis.call('HSET', KEYS[5], id, ARGV[3])
        redis.call('HSET', KEYS[6], id, us(deadline))
        out[#out + 1] = id
        out[#out + 1] = tostring(e)
        out[#out + 1] = data
        claimed = claimed + 1
        if claimed >= limit then break end
      end
    end
  end
  offset = offset + #ids
end
return out
"#;

const RENEW: &str = r#"
local all = redis.call('HGETALL', KEYS[5])
local n = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] and tonumber(redis.call('HGET', KEYS[6], all[i]) or '0') > now then
    redis.call('HSET', KEYS[6], all[i], us(now + tonumber(ARGV[2])))
    n = n + 1
  end
end
return n
"#;

const COMMIT_MANY: &str = r#"
local node = ARGV[1]
local count = tonumber(ARGV[2])
local i = 3
local out = {}
for item = 1, count do
  local id, epoch, score, data = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local max, slots = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local first = i + 6
  i = first + slots
  if not held(id, node, epoch) then
    out[item] = {'L'}
  else
    local running = tonumber(redis.call('HGET', KEYS[10], id) or '0')
    if slots > 0 and running >= max then
      out[item] = {'R'}
    else
      local res = {'C'}
      for s = first, first + slots - 1 do
        local f = id .. '\n' .. ARGV[s]
        if redis.call('HSETNX', KEYS[7], f, node .. '\t' .. epoch .. '\t' .. us(now)) == 1 then
          redis.call('ZADD', KEYS[8], now, f)
          redis.call('HINCRBY', KEYS[10], id, 1)
          res[#res + 1] = ARGV[s]
        end
      end
      out[item] = res
    end
    if redis.call('HEXISTS', KEYS[1], id) == 1 then
      redis.call('HSET', KEYS[1], id, data)
      if redis.call('HEXISTS', KEYS[3], id) == 0 then
        if score == '' then redis.call('ZREM', KEYS[2], id) else redis.call('ZADD', KEYS[2], score, id) end
      end
    end
    redis.call('HDEL', KEYS[5], id)
    redis.call('HDEL', KEYS[6], id)
  end
end
return out
"#;

const FINISH_MANY: &str = r#"
local node = ARGV[1]
local count = tonumber(ARGV[2])
local done = 0
for k = 0, count - 1 do
  local id, slot, epoch, outcome = ARGV[3 + k * 4], ARGV[4 + k * 4], ARGV[5 + k * 4], ARGV[6 + k * 4]
  local f = id .. '\n' .. slot
  local v = redis.call('HGET', KEYS[7], f)
  if v then
    local n, e, c, rest = parse(v)
    if n == node and e == epoch and rest == '' then
      redis.call('HSET', KEYS[7], f, n .. '\t' .. e .. '\t' .. c .. '\t' .. us(now) .. '\t' .. outcome)
      redis.call('ZREM', KEYS[8], f)
      redis.call('ZADD', KEYS[9], now, f)
      if redis.call('HINCRBY', KEYS[10], id, -1) <= 0 then redis.call('HDEL', KEYS[10], id) end
      done = done + 1
    end
  end
end
return done
"#;

const RELEASE: &str = r#"
if not held(ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return 1
"#;

const RELEASE_ALL: &str = r#"
local all = redis.call('HGETALL', KEYS[5])
local n = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[5], all[i])
    if tonumber(redis.call('HGET', KEYS[6], all[i]) or '0') > now then n = n + 1 end
    redis.call('HDEL', KEYS[6], all[i])
  end
end
return n
"#;

const HEARTBEAT: &str = r#"
local id = ARGV[1]
local expires = node_expires(id)
local lapsed = expires == nil or expires <= now
if lapsed then orphan(id) end
local until_us = now + tonumber(ARGV[6])
redis.call('HSET', KEYS[11], id, cjson.encode({host = ARGV[2], pid = ARGV[3], started = ARGV[4],
  heartbeat = us(now), expires = us(until_us), skew = us(tonumber(ARGV[5]) - now)}))
return {lapsed and 1 or 0, us(now), us(until_us)}
"#;

const NODES: &str = r#"
local out = {us(now)}
local all = redis.call('HGETALL', KEYS[11])
for i = 1, #all do out[#out + 1] = all[i] end
return out
"#;

const UNREGISTER: &str = r#"
orphan(ARGV[1])
return redis.call('HDEL', KEYS[11], ARGV[1])
"#;

const RUNNING: &str = r#"
local out = {}
for _, f in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
  local v = redis.call('HGET', KEYS[7], f)
  if v then
    out[#out + 1] = f
    out[#out + 1] = v
  end
end
return out
"#;

const ADOPT: &str = r#"
local node, limit = ARGV[1], tonumber(ARGV[2])
local mine = node_expires(node)
if mine == nil or mine <= now then return {} end
local gone = {}
local function lapsed(n)
  if n == '' then return true end
  if gone[n] == nil then
    local e = node_expires(n)
    gone[n] = e ~= nil and e <= now
  end
  return gone[n]
end
local out = {}
local taken = 0
for _, f in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
  if taken >= limit then break end
  local v = redis.call('HGET', KEYS[7], f)
  if v then
    local n, e, c, rest = parse(v)
    if rest == '' and lapsed(n) then
      local epoch = tostring(tonumber(e) + 1)
      redis.call('HSET', KEYS[7], f, node .. '\t' .. epoch .. '\t' .. c)
      local data = redis.call('HGET', KEYS[1], fire_job(f))
      out[#out + 1] = f
      out[#out + 1] = epoch
      out[#out + 1] = data and '1' or '0'
      out[#out + 1] = data or ''
      taken = taken + 1
    end
  end
end
return out
"#;

const PRUNE: &str = r#"
local cutoff, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = 0
local old = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', '(' .. ARGV[1], 'LIMIT', 0, limit)
for _, f in ipairs(old) do
  redis.call('HDEL', KEYS[7], f)
  redis.call('ZREM', KEYS[9], f)
  n = n + 1
end
local cursor = redis.call('GET', KEYS[12]) or '0'
local scan = redis.call('HSCAN', KEYS[4], cursor, 'COUNT', limit)
redis.call('SET', KEYS[12], scan[1])
local leases = 0
for i = 1, #scan[2], 2 do
  local id = scan[2][i]
  if leases < limit and redis.call('HEXISTS', KEYS[1], id) == 0
      and tonumber(redis.call('HGET', KEYS[6], id) or '0') <= now then
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
    redis.call('HDEL', KEYS[6], id)
    leases = leases + 1
  end
end
n = n + leases
local busy = {}
for _, f in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
  local v = redis.call('HGET', KEYS[7], f)
  if v then busy[parse(v)] = true end
end
local all = redis.call('HGETALL', KEYS[11])
local nodes = 0
for i = 1, #all, 2 do
  if nodes < limit and not busy[all[i]] and tonumber(cjson.decode(all[i + 1]).expires) < cutoff then
    redis.call('HDEL', KEYS[11], all[i])
    nodes = nodes + 1
  end
end
return n + nodes
"#;

/// Layout 1 → 2, one page: indexes the fires of one `HSCAN` page of the fires hash.
const UPGRADE_PAGE: &str = r#"
local scan = redis.call('HSCAN', KEYS[7], ARGV[1], 'COUNT', 1000)
local items = scan[2]
for i = 1, #items, 2 do
  local n, e, c, rest = parse(items[i + 1])
  if c then
    if rest == '' then
      redis.call('ZADD', KEYS[8], tonumber(c), items[i])
    else
      local finished = string.match(rest, '^\t([^\t]*)')
      redis.call('ZADD', KEYS[9], tonumber(finished) or now, items[i])
    end
  end
end
return scan[1]
"#;

/// Layout 1 → 2, last step: the counts of unfinished fires per job.
const UPGRADE_COUNTS: &str = r#"
redis.call('DEL', KEYS[10])
for _, f in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
  redis.call('HINCRBY', KEYS[10], fire_job(f), 1)
end
return 1
"#;

/// The scripts, with the prelude, hashed once.
struct Scripts {
    claim: Script,
    renew: Script,
    commit_many: Script,
    finish_many: Script,
    release: Script,
    release_all: Script,
    heartbeat: Script,
    nodes: Script,
    unregister: Script,
    running: Script,
    adopt: Script,
    prune: Script,
    upgrade_page: Script,
    upgrade_counts: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let s = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
    Scripts {
        claim: s(CLAIM),
        renew: s(RENEW),
        commit_many: s(COMMIT_MANY),
        finish_many: s(FINISH_MANY),
        release: s(RELEASE),
        release_all: s(RELEASE_ALL),
        heartbeat: s(HEARTBEAT),
        nodes: s(NODES),
        unregister: s(UNREGISTER),
        running: s(RUNNING),
        adopt: s(ADOPT),
        prune: s(PRUNE),
        upgrade_page: s(UPGRADE_PAGE),
        upgrade_counts: s(UPGRADE_COUNTS),
    }
});

fn err(e: RedisError) -> StoreError {
    StoreError::unavailable(e.to_string(), Some(Box::new(e)))
}

/// `node` as a node id of this store: not empty, and without a tab (the separator of the
/// fire records).
fn check(node: &str) -> Result<(), StoreError> {
    check_node(node)?;
    if node.contains('\t') {
        return Err(StoreError::invalid_argument(format!(
            "node id {node:?} contains a tab, which this store uses as a separator"
        )));
    }
    Ok(())
}

/// The key prefix of a store (`sched:`).
fn prefix(store: &RedisStore) -> String {
    let (_, _, [jobs, _, _]) = store.lease_parts();
    jobs.strip_suffix("jobs").unwrap_or(jobs).to_owned()
}

/// Every key the scripts use, in the order of [`PRELUDE`].
fn keys(store: &RedisStore) -> [String; 12] {
    let (_, _, [jobs, run_times, quarantine]) = store.lease_parts();
    let p = prefix(store);
    [
        jobs.to_owned(),
        run_times.to_owned(),
        quarantine.to_owned(),
        format!("{p}lease_epoch"),
        format!("{p}lease_node"),
        format!("{p}lease_until"),
        format!("{p}fires"),
        format!("{p}fires_running"),
        format!("{p}fires_done"),
        format!("{p}fires_running_jobs"),
        format!("{p}nodes"),
        format!("{p}lease_prune_cursor"),
    ]
}

/// An invocation of `script` with every key.
fn invoke<'a>(script: &'a Script, keys: &[String; 12]) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    for k in keys {
        invocation.key(k);
    }
    invocation
}

/// The score written for a next run time: whole microseconds, rounded up.
fn score(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| {
        let floor = t.timestamp_micros();
        let exact = t.timestamp_subsec_nanos().is_multiple_of(1000);
        (if exact {
            floor
        } else {
            floor.saturating_add(1)
        })
        .to_string()
    })
    .unwrap_or_default()
}

/// A fire from its field in the fires hash (`"<job id>\n<slot µs>"`).
fn fire_of(field: &str) -> Option<FireId> {
    let (job, slot) = field.rsplit_once('\n')?;
    Some(FireId::new(
        JobId::new(job).ok()?,
        from_micros(slot.parse().ok()?),
    ))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A µs value stored as a JSON string (or number) in a node record.
fn json_micros(v: &Value, name: &str) -> i64 {
    match &v[name] {
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    }
}

/// The notification channel of a store (`<prefix>changes`).
fn channel(store: &RedisStore) -> String {
    format!("{}changes", prefix(store))
}

/// Builds the fire indexes of layout 2 from the fires hash (see the module docs); safe to
/// run again.
pub(crate) async fn upgrade_layout(store: &RedisStore) -> Result<(), StoreError> {
    let (mut conn, _, _) = store.lease_parts();
    let k = keys(store);
    let mut cursor = "0".to_owned();
    loop {
        cursor = invoke(&SCRIPTS.upgrade_page, &k)
            .arg(&cursor)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        if cursor == "0" {
            break;
        }
    }
    let _: i64 = invoke(&SCRIPTS.upgrade_counts, &k)
        .invoke_async(&mut conn)
        .await
        .map_err(err)?;
    Ok(())
}

/// The next message of a pub/sub stream; `None` when its connection is gone.
async fn next_message(stream: &mut Pin<Box<redis::aio::PubSubStream>>) -> Option<redis::Msg> {
    std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}

/// A pub/sub connection subscribed to `channel`.
async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> Result<Pin<Box<redis::aio::PubSubStream>>, RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(Box::pin(pubsub.into_on_message()))
}

impl LeaseStore for RedisStore {
    async fn store_time(&self) -> Result<DateTime<Utc>, StoreError> {
        let (mut conn, _, _) = self.lease_parts();
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(from_micros(secs * 1_000_000 + micros))
    }

    async fn claim_due(
        &self,
        node: &str,
        up_to: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        check(node)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (mut conn, codec, _) = self.lease_parts();
        let out: Vec<Vec<u8>> = invoke(&SCRIPTS.claim, &keys(self))
            .arg(up_to.timestamp_micros())
            .arg(limit)
            .arg(node)
            .arg(lease_micros(lease))
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let mut items = out.into_iter().map(text);
        let until: i64 = items.next().and_then(|u| u.parse().ok()).unwrap_or(0);
        let mut claims = Vec::new();
        while let (Some(id), Some(epoch), Some(data)) = (items.next(), items.next(), items.next()) {
            let Ok(job) = codec.decode(&data) else {
                continue;
            };
            if job.id.as_str() != id {
                continue;
            }
            claims.push(Claim {
                job,
                epoch: epoch.parse().unwrap_or(0),
                expires_at: from_micros(until),
            });
        }
        Ok(claims)
    }

    async fn renew(&self, node: &str, lease: Duration) -> Result<u64, StoreError> {
        check(node)?;
        let (mut conn, _, _) = self.lease_parts();
        invoke(&SCRIPTS.renew, &keys(self))
            .arg(node)
            .arg(lease_micros(lease))
            .invoke_async(&mut conn)
            .await
            .map_err(err)
    }

    async fn release(&self, node: &str, id: &JobId, epoch: i64) -> Result<bool, StoreError> {
        check(node)?;
        let (mut conn, _, _) = self.lease_parts();
        let n: i64 = invoke(&SCRIPTS.release, &keys(self))
            .arg(id.as_str())
            .arg(node)
            .arg(epoch)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn release_all(&self, node: &str) -> Result<u64, StoreError> {
        check(node)?;
        let (mut conn, _, _) = self.lease_parts();
        invoke(&SCRIPTS.release_all, &keys(self))
            .arg(node)
            .invoke_async(&mut conn)
            .await
            .map_err(err)
    }

    async fn commit_many(
        &self,
        node: &str,
        batch: &[CommitRequest<'_>],
    ) -> Result<Vec<Commit>, StoreError> {
        check(node)?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (mut conn, codec, _) = self.lease_parts();
        let k = keys(self);
        let mut invocation = invoke(&SCRIPTS.commit_many, &k);
        invocation.arg(node).arg(batch.len());
        for req in batch {
            invocation
                .arg(req.job.id.as_str())
                .arg(req.epoch)
                .arg(score(req.job.next_run_time))
                .arg(codec.encode(req.job)?)
                .arg(req.job.max_instances)
                .arg(req.slots.len());
            for slot in req.slots {
                invocation.arg(slot.timestamp_micros());
            }
        }
        let out: Vec<Vec<String>> = invocation.invoke_async(&mut conn).await.map_err(err)?;
        Ok(batch
            .iter()
            .zip(out.into_iter().chain(std::iter::repeat(Vec::new())))
            .map(|(req, answer)| match answer.first().map(String::as_str) {
                Some("C") => {
                    let created: Vec<i64> =
                        answer[1..].iter().filter_map(|s| s.parse().ok()).collect();
                    Commit::Committed {
                        created: req
                            .slots
                            .iter()
                            .filter(|t| created.contains(&t.timestamp_micros()))
                            .map(|t| FireId::new(req.job.id.clone(), *t))
                            .collect(),
                    }
                }
                Some("R") => Commit::Refused,
                _ => Commit::Lost,
            })
            .collect())
    }

    async fn finish_fires(&self, node: &str, done: &[Finished]) -> Result<u64, StoreError> {
        check(node)?;
        if done.is_empty() {
            return Ok(0);
        }
        let (mut conn, _, _) = self.lease_parts();
        let k = keys(self);
        let mut invocation = invoke(&SCRIPTS.finish_many, &k);
        invocation.arg(node).arg(done.len());
        for d in done {
            invocation
                .arg(d.fire.job.as_str())
                .arg(d.fire.scheduled.timestamp_micros())
                .arg(d.epoch)
                .arg(d.outcome.as_str());
        }
        invocation.invoke_async(&mut conn).await.map_err(err)
    }

    async fn heartbeat(
        &self,
        node: &NodeInfo,
        node_now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Heartbeat, StoreError> {
        check(&node.id)?;
        let (mut conn, _, _) = self.lease_parts();
        let (lapsed, now, expires): (i64, i64, i64) = invoke(&SCRIPTS.heartbeat, &keys(self))
            .arg(&node.id)
            .arg(&node.host)
            .arg(node.pid)
            .arg(node.started_at.timestamp_micros())
            .arg(node_now.timestamp_micros())
            .arg(lease_micros(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(Heartbeat {
            store_time: from_micros(now),
            expires_at: from_micros(expires),
            lapsed: lapsed == 1,
        })
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let (mut conn, _, _) = self.lease_parts();
        let out: Vec<Vec<u8>> = invoke(&SCRIPTS.nodes, &keys(self))
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let mut items = out.into_iter().map(text);
        let now: i64 = items.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut nodes = Vec::new();
        while let (Some(id), Some(record)) = (items.next(), items.next()) {
            let v: Value = serde_json::from_str(&record).unwrap_or(Value::Null);
            let expires = json_micros(&v, "expires");
            nodes.push(NodeRecord {
                host: v["host"].as_str().unwrap_or_default().to_owned(),
                pid: u32::try_from(json_micros(&v, "pid")).unwrap_or(0),
                started_at: from_micros(json_micros(&v, "started")),
                heartbeat_at: from_micros(json_micros(&v, "heartbeat")),
                expires_at: from_micros(expires),
                clock_skew: TimeDelta::microseconds(json_micros(&v, "skew")),
                alive: expires > now,
                id,
            });
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    async fn unregister_node(&self, node: &str) -> Result<bool, StoreError> {
        check(node)?;
        let (mut conn, _, _) = self.lease_parts();
        let n: i64 = invoke(&SCRIPTS.unregister, &keys(self))
            .arg(node)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn running_fires(&self) -> Result<Vec<RunningFire>, StoreError> {
        let (mut conn, _, _) = self.lease_parts();
        let out: Vec<Vec<u8>> = invoke(&SCRIPTS.running, &keys(self))
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let mut items = out.into_iter().map(text);
        let mut fires = Vec::new();
        while let (Some(field), Some(value)) = (items.next(), items.next()) {
            let mut parts = value.splitn(4, '\t');
            let (Some(node), Some(epoch), Some(created)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(fire) = fire_of(&field) else {
                continue;
            };
            fires.push(RunningFire {
                fire,
                node: node.to_owned(),
                epoch: epoch.parse().unwrap_or(0),
                created_at: from_micros(created.parse().unwrap_or(0)),
            });
        }
        Ok(fires)
    }

    async fn adopt_fires(&self, node: &str, limit: usize) -> Result<Vec<Adopted>, StoreError> {
        check(node)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (mut conn, codec, _) = self.lease_parts();
        let out: Vec<Vec<u8>> = invoke(&SCRIPTS.adopt, &keys(self))
            .arg(node)
            .arg(limit)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let mut items = out.into_iter().map(text);
        let mut adopted = Vec::new();
        while let (Some(field), Some(epoch), Some(exists), Some(data)) =
            (items.next(), items.next(), items.next(), items.next())
        {
            let Some(fire) = fire_of(&field) else {
                continue;
            };
            let job: Option<Job> = (exists == "1")
                .then(|| codec.decode(&data).ok())
                .flatten()
                .filter(|j| j.id == fire.job);
            adopted.push(Adopted {
                fire,
                epoch: epoch.parse().unwrap_or(0),
                job,
            });
        }
        Ok(adopted)
    }

    async fn prune(&self, finished_before: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let (mut conn, _, _) = self.lease_parts();
        invoke(&SCRIPTS.prune, &keys(self))
            .arg(finished_before.timestamp_micros())
            .arg(limit)
            .invoke_async(&mut conn)
            .await
            .map_err(err)
    }

    async fn notify_changed(&self) -> Result<(), StoreError> {
        let (mut conn, _, _) = self.lease_parts();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel(self))
            .arg("")
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn changes(&self) -> Result<Option<ChangeFeed>, StoreError> {
        let Some(client) = self.lease_client().cloned() else {
            return Err(StoreError::Unsupported {
                operation: "changes on a RedisStore made by from_connection (no client to open \
                            a pub/sub connection with; use connect_with or from_client)",
            });
        };
        let channel = channel(self);
        let mut stream = subscribe(&client, &channel).await.map_err(err)?;
        let (feed, waker) = feed::channel();
        tokio::spawn(async move {
            loop {
                match waker.or_closed(next_message(&mut stream)).await {
                    None => return,
                    Some(Some(_)) => waker.wake(),
                    // The connection is gone: subscribe again, then wake (notifications
                    // may have been missed meanwhile).
                    Some(None) => {
                        let mut backoff = feed::Backoff::new();
                        loop {
                            match waker.or_closed(subscribe(&client, &channel)).await {
                                None => return,
                                Some(Ok(again)) => {
                                    stream = again;
                                    break;
                                }
                                Some(Err(_)) => {
                                    if waker.or_closed(backoff.sleep()).await.is_none() {
                                        return;
                                    }
                                }
                            }
                        }
                        waker.wake();
                    }
                }
            }
        });
        Ok(Some(feed))
    }
}
