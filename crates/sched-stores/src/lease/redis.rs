//! [`LeaseStore`] for Redis: every operation is one Lua script, timed by `TIME`.
//!
//! # Keys
//! Beside the store's keys, with the default prefix `sched:` (each key is derived from the
//! jobs key, so a hash-tagged prefix keeps them in one slot):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `sched:lease_epoch` | hash | job id → claim counter (never reset) |
//! | `sched:lease_node` | hash | job id → node holding the lease (deleted on release) |
//! | `sched:lease_until` | hash | job id → lease deadline, µs on the server's `TIME` |
//! | `sched:fires` | hash | `"<job id>\n<slot µs>"` → `node\tepoch\tcreated µs[\tfinished µs\toutcome]`, created with `HSETNX` |
//!
//! Absent hashes mean "no lease and no fire", so the layout needs no migration: the layout
//! version stays 1 and a node of the previous release ignores these keys.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::{RedisError, Script};
use sched_core::job::{Job, JobId};

use super::{Claim, Commit, FireId, LeaseStore, from_micros, lease_micros};
use crate::StoreError;
use crate::redis::RedisStore;

const NOW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function us(x) return string.format('%.0f', x) end
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
    local u = tonumber(redis.call('HGET', KEYS[5], id) or '0')
    if u <= now then
      local data = redis.call('HGET', KEYS[1], id)
      if data then
        local e = redis.call('HINCRBY', KEYS[3], id, 1)
        redis.call('HSET', KEYS[4], id, ARGV[3])
        redis.call('HSET', KEYS[5], id, us(deadline))
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
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] and tonumber(redis.call('HGET', KEYS[2], all[i]) or '0') > now then
    redis.call('HSET', KEYS[2], all[i], us(now + tonumber(ARGV[2])))
    n = n + 1
  end
end
return n
"#;

const HELD: &str = r#"
local function held(id, node, epoch)
  return redis.call('HGET', KEYS[5], id) == node and redis.call('HGET', KEYS[4], id) == epoch
    and tonumber(redis.call('HGET', KEYS[6], id) or '0') > now
end
"#;

const COMMIT: &str = r#"
local id, node, epoch = ARGV[1], ARGV[2], ARGV[3]
if not held(id, node, epoch) then return false end
local created = {}
for i = 6, #ARGV do
  if redis.call('HSETNX', KEYS[7], id .. '\n' .. ARGV[i], node .. '\t' .. epoch .. '\t' .. us(now)) == 1 then
    created[#created + 1] = ARGV[i]
  end
end
if redis.call('HEXISTS', KEYS[1], id) == 1 then
  redis.call('HSET', KEYS[1], id, ARGV[5])
  if redis.call('HEXISTS', KEYS[3], id) == 0 then
    if ARGV[4] == '' then redis.call('ZREM', KEYS[2], id) else redis.call('ZADD', KEYS[2], ARGV[4], id) end
  end
end
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
return created
"#;

const RELEASE: &str = r#"
if not held(ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return 1
"#;

const RELEASE_ALL: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    if tonumber(redis.call('HGET', KEYS[2], all[i]) or '0') > now then n = n + 1 end
    redis.call('HDEL', KEYS[2], all[i])
  end
end
return n
"#;

const FINISH: &str = r#"
local f = ARGV[1] .. '\n' .. ARGV[2]
local v = redis.call('HGET', KEYS[1], f)
if not v then return 0 end
local head = string.match(v, '^([^\t]*\t[^\t]*\t[^\t]*)')
if head == nil or string.sub(head, 1, #ARGV[3] + #ARGV[4] + 2) ~= ARGV[3] .. '\t' .. ARGV[4] .. '\t' then
  return 0
end
redis.call('HSET', KEYS[1], f, head .. '\t' .. us(now) .. '\t' .. ARGV[5])
return 1
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{NOW}{body}"))
}

fn script_held(body: &str) -> Script {
    Script::new(&format!("{NOW}{HELD}{body}"))
}

fn err(e: RedisError) -> StoreError {
    StoreError::unavailable(e.to_string(), Some(Box::new(e)))
}

/// The store's keys and the lease keys, in the order the scripts name them:
/// jobs, run times, quarantine, epoch, node, until, fires.
fn keys(store: &RedisStore) -> [String; 7] {
    let (_, _, [jobs, run_times, quarantine]) = store.lease_parts();
    let prefix = jobs.strip_suffix("jobs").unwrap_or(jobs);
    [
        jobs.to_owned(),
        run_times.to_owned(),
        quarantine.to_owned(),
        format!("{prefix}lease_epoch"),
        format!("{prefix}lease_node"),
        format!("{prefix}lease_until"),
        format!("{prefix}fires"),
    ]
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
        let (mut conn, codec, _) = self.lease_parts();
        let k = keys(self);
        let out: Vec<Vec<u8>> = script(CLAIM)
            .key(&k[0])
            .key(&k[1])
            .key(&k[3])
            .key(&k[4])
            .key(&k[5])
            .arg(up_to.timestamp_micros())
            .arg(limit.max(1))
            .arg(node)
            .arg(lease_micros(lease))
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let mut items = out
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
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
        let (mut conn, _, _) = self.lease_parts();
        let k = keys(self);
        script(RENEW)
            .key(&k[4])
            .key(&k[5])
            .arg(node)
            .arg(lease_micros(lease))
            .invoke_async(&mut conn)
            .await
            .map_err(err)
    }

    async fn commit_fires(
        &self,
        node: &str,
        epoch: i64,
        slots: &[DateTime<Utc>],
        job: &Job,
    ) -> Result<Commit, StoreError> {
        let (mut conn, codec, _) = self.lease_parts();
        let data = codec.encode(job)?;
        let k = keys(self);
        let commit = script_held(COMMIT);
        let mut invocation = commit.key(&k[0]);
        invocation
            .key(&k[1])
            .key(&k[2])
            .key(&k[3])
            .key(&k[4])
            .key(&k[5])
            .key(&k[6])
            .arg(job.id.as_str())
            .arg(node)
            .arg(epoch)
            .arg(score(job.next_run_time))
            .arg(data);
        for slot in slots {
            invocation.arg(slot.timestamp_micros());
        }
        let created: Option<Vec<i64>> = invocation.invoke_async(&mut conn).await.map_err(err)?;
        Ok(match created {
            None => Commit::Lost,
            Some(created) => Commit::Committed {
                created: slots
                    .iter()
                    .filter(|t| created.contains(&t.timestamp_micros()))
                    .map(|t| FireId::new(job.id.clone(), *t))
                    .collect(),
            },
        })
    }

    async fn finish_fire(
        &self,
        node: &str,
        epoch: i64,
        fire: &FireId,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let (mut conn, _, _) = self.lease_parts();
        let k = keys(self);
        let n: i64 = script(FINISH)
            .key(&k[6])
            .arg(fire.job.as_str())
            .arg(fire.scheduled.timestamp_micros())
            .arg(node)
            .arg(epoch)
            .arg(outcome)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn release(&self, node: &str, id: &JobId, epoch: i64) -> Result<bool, StoreError> {
        let (mut conn, _, _) = self.lease_parts();
        let k = keys(self);
        let n: i64 = script_held(RELEASE)
            .key(&k[0])
            .key(&k[1])
            .key(&k[2])
            .key(&k[3])
            .key(&k[4])
            .key(&k[5])
            .arg(id.as_str())
            .arg(node)
            .arg(epoch)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn release_all(&self, node: &str) -> Result<u64, StoreError> {
        let (mut conn, _, _) = self.lease_parts();
        let k = keys(self);
        script(RELEASE_ALL)
            .key(&k[4])
            .key(&k[5])
            .arg(node)
            .invoke_async(&mut conn)
            .await
            .map_err(err)
    }
}
