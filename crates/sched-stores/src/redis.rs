//! [`RedisStore`]: jobs in Redis, a hash of job records and a sorted set of run times.
//!
//! # Keys
//! With the default prefix `sched:`:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `sched:jobs` | hash | job id → the codec's text of the job |
//! | `sched:run_times` | sorted set | job id, scored by next run time (µs since the epoch); paused and quarantined jobs are not in it |
//! | `sched:quarantine` | hash | job id → why it is quarantined |
//! | `sched:schema_version` | string | the layout version, `2` |
//! | `sched:migrate_lock` | string | held (with a random token, `SET NX PX`) while the layout is checked or upgraded |
//!
//! Every write that touches more than one key is one Lua script, so it is atomic; jobs
//! due at the same time come out by id because the sorted set orders equal scores by
//! member. Scores are doubles: run times are exact to the microsecond until the year 2255.
//! On a Redis Cluster, give the prefix a hash tag (`{sched}:`) so that the keys share a
//! slot.
//!
//! ```no_run
//! use sched_stores::{JobStore, StoreOptions};
//! use sched_stores::redis::RedisStore;
//!
//! # async fn demo() -> Result<(), sched_stores::StoreError> {
//! let store = RedisStore::connect_with("redis://127.0.0.1/", StoreOptions::new().prefix("app:")).await?;
//! println!("{} jobs", store.all_jobs().await?.len());
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, Script};
use sched_core::job::{Job, JobId};

use crate::{
    JobCodec, JobStore, QuarantinedJob, ScheduleChange, ScheduleWrite, StoreError, StoreOptions,
};

/// Jobs per script call in a batch.
const ADD_CHUNK: usize = 2_000;
/// How long a connector waits for another one's migration.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// How long the migration lock lives if its holder dies.
const LOCK_TTL_MS: u64 = 30_000;
/// The key layout this release writes (2: the fire indexes of the lease capability).
const LAYOUT_VERSION: i64 = 2;

const ADD: &str = r#"
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local id = ARGV[2 + i * 3]
  if redis.call('HEXISTS', KEYS[1], id) == 1 then return id end
end
for i = 0, n - 1 do
  local id, score, data = ARGV[2 + i * 3], ARGV[3 + i * 3], ARGV[4 + i * 3]
  redis.call('HSET', KEYS[1], id, data)
  if score ~= '' then redis.call('ZADD', KEYS[2], score, id) end
end
return false
"#;

const UPDATE: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 1 end
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
return 1
"#;

const REMOVE: &str = r#"
local n = redis.call('HDEL', KEYS[1], unpack(ARGV))
redis.call('ZREM', KEYS[2], unpack(ARGV))
redis.call('HDEL', KEYS[3], unpack(ARGV))
return n
"#;

// ARGV: the number of changes, then four per change: `a` (advance) or `r` (remove), the
// id, the score ('' pauses) and the text (both '' for a removal). Returns 1 or 0 per change:
// whether the job was there. An advance is UPDATE's, a removal REMOVE's.
const ADVANCE: &str = r#"
local n = tonumber(ARGV[1])
local found = {}
for i = 0, n - 1 do
  local kind, id = ARGV[2 + i * 4], ARGV[3 + i * 4]
  if kind == 'r' then
    found[i + 1] = redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  elseif redis.call('HEXISTS', KEYS[1], id) == 0 then
    found[i + 1] = 0
  else
    local score = ARGV[4 + i * 4]
    redis.call('HSET', KEYS[1], id, ARGV[5 + i * 4])
    if redis.call('HEXISTS', KEYS[3], id) == 0 then
      if score == '' then
        redis.call('ZREM', KEYS[2], id)
      else
        redis.call('ZADD', KEYS[2], score, id)
      end
    end
    found[i + 1] = 1
  end
end
return found
"#;

const DUE: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local data = redis.call('HGET', KEYS[1], id)
  if data then
    out[#out + 1] = id
    out[#out + 1] = data
  end
end
return out
"#;

const QUARANTINE: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 1 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"#;

const QUARANTINED: &str = r#"
local q = redis.call('HGETALL', KEYS[3])
local out = {}
for i = 1, #q, 2 do
  local data = redis.call('HGET', KEYS[1], q[i])
  if data then
    out[#out + 1] = q[i]
    out[#out + 1] = q[i + 1]
    out[#out + 1] = data
  end
end
return out
"#;

const RELEASE: &str = r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
if current ~= ARGV[2] then return -1 end
if redis.call('HDEL', KEYS[3], ARGV[1]) == 1 and ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"#;

const UNLOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// A persistent store in Redis.
///
/// Jobs are the JSON of their [`StoredJob`](sched_core::job::StoredJob) form (see
/// [`StoredJobCodec`](crate::StoredJobCodec)); the layout is described in the
/// [module docs](self). The connection is a [`ConnectionManager`], which reconnects after
/// the server comes back: calls made while it is down fail with
/// [`StoreError::Unavailable`]. Every write is one script, so every method is cancel safe
/// in the sense of [`JobStore`]; a batch larger than 2,000 jobs is several scripts, and a
/// conflict found in a later one removes the jobs the earlier ones added.
pub struct RedisStore {
    conn: ConnectionManager,
    /// The client the connection came from, when known: the lease capability opens its
    /// pub/sub connection with it.
    client: Option<redis::Client>,
    codec: Arc<dyn JobCodec>,
    keys: Keys,
    scripts: Scripts,
}

#[derive(Debug)]
struct Keys {
    jobs: String,
    run_times: String,
    quarantine: String,
    version: String,
    lock: String,
}

struct Scripts {
    add: Script,
    update: Script,
    remove: Script,
    advance: Script,
    due: Script,
    quarantine: Script,
    quarantined: Script,
    release: Script,
}

fn map_err(e: RedisError, id: Option<&JobId>) -> StoreError {
    use redis::ErrorKind;
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            StoreError::serialization(id.cloned(), e.to_string(), Some(Box::new(e)))
        }
        _ => StoreError::unavailable(e.to_string(), Some(Box::new(e))),
    }
}

/// The score written for a next run time: whole microseconds, rounded up.
fn score(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| {
        let floor = t.timestamp_micros();
        let micros = if t.timestamp_subsec_nanos().is_multiple_of(1000) {
            floor
        } else {
            floor.saturating_add(1)
        };
        micros.to_string()
    })
    .unwrap_or_default()
}

/// A job record as read: the id and the text, as bytes.
type Record = (Vec<u8>, Vec<u8>);

/// Text read back from Redis. Values are bytes there; bytes that are not UTF-8 are read
/// lossily, so that such a record is quarantined by the codec rather than failing a query.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn reason_of(e: &StoreError) -> String {
    match e {
        StoreError::Serialization { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`) with default options.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached, or the layout check
    /// cannot take the migration lock within a minute.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect_with(url, StoreOptions::new()).await
    }

    /// Connects to `url` with `options` (key prefix, codec).
    ///
    /// # Errors
    /// As [`connect`](RedisStore::connect).
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(|e| map_err(e, None))?;
        // Few reconnection attempts per failure: a call made while the server is down
        // fails soon as unavailable (the scheduler retries with its own backoff), and the
        // next call reconnects.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(30)));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| map_err(e, None))?;
        RedisStore::open(conn, Some(client), options).await
    }

    /// A store on a connection you made, checking the key layout first.
    ///
    /// Such a store has no client to open a pub/sub connection with, so its
    /// [`LeaseStore::changes`](crate::LeaseStore::changes) answers
    /// [`StoreError::Unsupported`]; [`from_client`](RedisStore::from_client) keeps the client.
    ///
    /// # Errors
    /// As [`connect`](RedisStore::connect).
    pub async fn from_connection(
        conn: ConnectionManager,
        options: StoreOptions,
    ) -> Result<RedisStore, StoreError> {
        RedisStore::open(conn, None, options).await
    }

    /// A store on a connection you made from `client`, which is kept for the pub/sub
    /// connection of [`LeaseStore::changes`](crate::LeaseStore::changes).
    ///
    /// # Errors
    /// As [`connect`](RedisStore::connect).
    pub async fn from_client(
        client: redis::Client,
        conn: ConnectionManager,
        options: StoreOptions,
    ) -> Result<RedisStore, StoreError> {
        RedisStore::open(conn, Some(client), options).await
    }

    async fn open(
        conn: ConnectionManager,
        client: Option<redis::Client>,
        options: StoreOptions,
    ) -> Result<RedisStore, StoreError> {
        let p = options.prefix_or("sched:");
        let store = RedisStore {
            conn,
            client,
            codec: options.job_codec().clone(),
            keys: Keys {
                jobs: format!("{p}jobs"),
                run_times: format!("{p}run_times"),
                quarantine: format!("{p}quarantine"),
                version: format!("{p}schema_version"),
                lock: format!("{p}migrate_lock"),
            },
            scripts: Scripts {
                add: Script::new(ADD),
                update: Script::new(UPDATE),
                remove: Script::new(REMOVE),
                advance: Script::new(ADVANCE),
                due: Script::new(DUE),
                quarantine: Script::new(QUARANTINE),
                quarantined: Script::new(QUARANTINED),
                release: Script::new(RELEASE),
            },
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The connection, to run commands of your own.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The connection, key prefix, codec and the keys of the jobs, run times and
    /// quarantine, for the lease capability (`crate::lease`).
    pub(crate) fn lease_parts(&self) -> (ConnectionManager, &Arc<dyn JobCodec>, [&str; 3]) {
        (
            self.conn.clone(),
            &self.codec,
            [&self.keys.jobs, &self.keys.run_times, &self.keys.quarantine],
        )
    }

    /// The client the connection came from, when the store was made with one.
    pub(crate) fn lease_client(&self) -> Option<&redis::Client> {
        self.client.as_ref()
    }

    /// The name of the hash of job records.
    pub fn jobs_key(&self) -> &str {
        &self.keys.jobs
    }

    /// The name of the sorted set of next run times.
    pub fn run_times_key(&self) -> &str {
        &self.keys.run_times
    }

    /// The layout version recorded in Redis.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let v: Option<i64> = self
            .conn
            .clone()
            .get(&self.keys.version)
            .await
            .map_err(|e| map_err(e, None))?;
        Ok(v.unwrap_or(0))
    }

    /// Records the layout version under the migration lock (`SET NX PX` with a random
    /// token, released only by its holder), so connectors starting at once upgrade the
    /// layout one at a time. Version 1 is the layout of the module docs; version 2 adds the
    /// fire indexes of the lease capability, built from the fires hash on upgrade (see
    /// `crate::lease`'s Redis keys).
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            let got: Option<String> = redis::cmd("SET")
                .arg(&self.keys.lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL_MS)
                .query_async(&mut conn)
                .await
                .map_err(|e| map_err(e, None))?;
            if got.is_some() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::unavailable(
                    format!(
                        "timed out waiting for the migration lock {}",
                        self.keys.lock
                    ),
                    None,
                ));
            }
            tokio::time::sleep(Duration::from_millis(20 + fastrand::u64(..30))).await;
        }
        let result = async {
            let current = self.schema_version().await?;
            if current < 2 {
                crate::lease::redis::upgrade_layout(self).await?;
            }
            if current < LAYOUT_VERSION {
                let () = conn
                    .set(&self.keys.version, LAYOUT_VERSION)
                    .await
                    .map_err(|e| map_err(e, None))?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        let released: Result<i64, RedisError> = Script::new(UNLOCK)
            .key(&self.keys.lock)
            .arg(&token)
            .invoke_async(&mut conn)
            .await;
        result?;
        released.map_err(|e| map_err(e, None))?;
        Ok(())
    }

    fn decode(&self, id: &str, text: &str) -> Result<Job, StoreError> {
        let job_id = JobId::new(id).ok();
        let job = self.codec.decode(text).map_err(|e| {
            StoreError::serialization(
                job_id.clone(),
                format!("cannot read the stored job: {}", reason_of(&e)),
                Some(Box::new(e)),
            )
        })?;
        if job.id.as_str() != id {
            return Err(StoreError::serialization(
                job_id,
                format!("the stored job says its id is {:?}", job.id.as_str()),
                None,
            ));
        }
        Ok(job)
    }

    /// Quarantines the record `id` (bytes: a record written behind the store's back may
    /// have any key); whether it exists.
    async fn set_quarantine(
        &self,
        id: &[u8],
        reason: &str,
        only_if_clear: bool,
    ) -> Result<bool, StoreError> {
        let n: i64 = self
            .scripts
            .quarantine
            .key(&self.keys.jobs)
            .key(&self.keys.run_times)
            .key(&self.keys.quarantine)
            .arg(id)
            .arg(reason)
            .arg(if only_if_clear { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_err(e, None))?;
        Ok(n == 1)
    }

    /// Decodes a record; one that fails is quarantined and the error returned, with whether
    /// the record is out of the run-time set now.
    async fn decode_or_quarantine(
        &self,
        id: &[u8],
        data: Vec<u8>,
    ) -> Result<Job, (StoreError, bool)> {
        match self.decode(&String::from_utf8_lossy(id), &text(data)) {
            Ok(job) => Ok(job),
            Err(e) => match self.set_quarantine(id, &reason_of(&e), true).await {
                Ok(done) => Err((e, done)),
                Err(unavailable) => Err((unavailable, false)),
            },
        }
    }

    async fn add_chunk(&self, chunk: &[(String, String, String)]) -> Result<(), StoreError> {
        let mut invocation = self.scripts.add.prepare_invoke();
        invocation
            .key(&self.keys.jobs)
            .key(&self.keys.run_times)
            .arg(chunk.len());
        for (id, score, data) in chunk {
            invocation.arg(id).arg(score).arg(data);
        }
        let conflict: Option<String> = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_err(e, None))?;
        match conflict {
            None => Ok(()),
            Some(id) => Err(StoreError::Conflict {
                id: JobId::new(id).map_err(|e| {
                    StoreError::serialization(None, e.to_string(), Some(Box::new(e)))
                })?,
            }),
        }
    }

    /// One script call writing `changes` (at most [`ADD_CHUNK`]); whether each job was there.
    async fn advance_chunk(
        &self,
        changes: &[(bool, &str, String, String)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut invocation = self.scripts.advance.prepare_invoke();
        invocation
            .key(&self.keys.jobs)
            .key(&self.keys.run_times)
            .key(&self.keys.quarantine)
            .arg(changes.len());
        for (remove, id, score, data) in changes {
            invocation
                .arg(if *remove { "r" } else { "a" })
                .arg(*id)
                .arg(score)
                .arg(data);
        }
        let found: Vec<i64> = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_err(e, None))?;
        if found.len() != changes.len() {
            return Err(StoreError::unavailable(
                format!(
                    "the advance script answered for {} changes out of {}",
                    found.len(),
                    changes.len()
                ),
                None,
            ));
        }
        Ok(found.into_iter().map(|n| n == 1).collect())
    }

    fn encode(&self, job: &Job) -> Result<(String, String, String), StoreError> {
        Ok((
            job.id.to_string(),
            score(job.next_run_time),
            self.codec.encode(job)?,
        ))
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.keys)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

impl JobStore for RedisStore {
    async fn add_job(&self, job: Job) -> Result<(), StoreError> {
        let row = self.encode(&job)?;
        self.add_chunk(std::slice::from_ref(&row)).await
    }

    async fn update_job(&self, job: Job) -> Result<(), StoreError> {
        let (id, score, data) = self.encode(&job)?;
        let n: i64 = self
            .scripts
            .update
            .key(&self.keys.jobs)
            .key(&self.keys.run_times)
            .key(&self.keys.quarantine)
            .arg(&id)
            .arg(score)
            .arg(data)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_err(e, Some(&job.id)))?;
        if n == 0 {
            return Err(StoreError::NotFound { id: job.id });
        }
        Ok(())
    }

    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        let n: i64 = self
            .scripts
            .remove
            .key(&self.keys.jobs)
            .key(&self.keys.run_times)
            .key(&self.keys.quarantine)
            .arg(id.as_str())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_err(e, Some(id)))?;
        if n == 0 {
            return Err(StoreError::NotFound { id: id.clone() });
        }
        Ok(())
    }

    /// One script call per 2,000 changes; each advance writes the job's text again (it
    /// holds the next run time too), as [`update_job`](JobStore::update_job) does.
    async fn advance_jobs(&self, changes: &[ScheduleChange<'_>]) -> ScheduleWrite {
        let mut write = ScheduleWrite {
            found: Vec::with_capacity(changes.len()),
            error: None,
        };
        for chunk in changes.chunks(ADD_CHUNK) {
            let mut args = Vec::with_capacity(chunk.len());
            for change in chunk {
                args.push(match *change {
                    ScheduleChange::Advance { job, next_run_time } => {
                        let mut advanced = job.clone();
                        advanced.next_run_time = next_run_time;
                        match self.codec.encode(&advanced) {
                            Ok(data) => (false, job.id.as_str(), score(next_run_time), data),
                            Err(e) => {
                                write.error = Some(e);
                                break;
                            }
                        }
                    }
                    ScheduleChange::Remove(id) => (true, id.as_str(), String::new(), String::new()),
                });
            }
            if !args.is_empty() {
                match self.advance_chunk(&args).await {
                    Ok(found) => write.found.extend(found),
                    Err(e) => {
                        write.error = Some(e);
                        break;
                    }
                }
            }
            if write.error.is_some() {
                break;
            }
        }
        write
    }

    async fn remove_all_jobs(&self) -> Result<(), StoreError> {
        let _: i64 = self
            .conn
            .clone()
            .del(&[&self.keys.jobs, &self.keys.run_times, &self.keys.quarantine])
            .await
            .map_err(|e| map_err(e, None))?;
        Ok(())
    }

    async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .clone()
            .hget(&self.keys.jobs, id.as_str())
            .await
            .map_err(|e| map_err(e, Some(id)))?;
        match bytes {
            None => Ok(None),
            Some(bytes) => self
                .decode_or_quarantine(id.as_str().as_bytes(), bytes)
                .await
                .map(Some)
                .map_err(|(e, _)| e),
        }
    }

    async fn due_jobs(&self, up_to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let up_to = up_to.timestamp_micros();
        let mut out = Vec::new();
        // Records that fail to decode are quarantined (and so leave the sorted set) as they
        // are met: loop until the limit is filled or none was skipped.
        while out.len() < limit {
            let want = limit - out.len();
            let pairs: Vec<Record> = self
                .scripts
                .due
                .key(&self.keys.jobs)
                .key(&self.keys.run_times)
                .arg(up_to)
                .arg(want)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| map_err(e, None))?;
            let fetched = pairs.len();
            let (mut skipped, mut all_quarantined) = (false, true);
            for (id, data) in pairs {
                match self.decode_or_quarantine(&id, data).await {
                    Ok(job) => out.push(job),
                    Err((StoreError::Serialization { .. }, done)) => {
                        skipped = true;
                        all_quarantined &= done;
                    }
                    Err((e, _)) => return Err(e),
                }
            }
            // Query again only when that makes progress: every skipped record is out of
            // the run-time set now.
            if !skipped || fetched < want || !all_quarantined {
                break;
            }
        }
        Ok(out)
    }

    async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let first: Vec<(String, f64)> = self
            .conn
            .clone()
            .zrange_withscores(&self.keys.run_times, 0, 0)
            .await
            .map_err(|e| map_err(e, None))?;
        match first.first() {
            None => Ok(None),
            Some((id, micros)) => DateTime::from_timestamp_micros(*micros as i64)
                .map(Some)
                .ok_or_else(|| {
                    StoreError::serialization(
                        JobId::new(id).ok(),
                        format!("run time score {micros} is out of range"),
                        None,
                    )
                }),
        }
    }

    async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let (records, quarantined): (Vec<Record>, Vec<Vec<u8>>) = redis::pipe()
            .atomic()
            .hgetall(&self.keys.jobs)
            .hkeys(&self.keys.quarantine)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_err(e, None))?;
        let quarantined: HashSet<Vec<u8>> = quarantined.into_iter().collect();
        let mut jobs = Vec::with_capacity(records.len());
        for (id, data) in records {
            if quarantined.contains(&id) {
                continue;
            }
            match self.decode_or_quarantine(&id, data).await {
                Ok(job) => jobs.push(job),
                Err((StoreError::Serialization { .. }, _)) => {}
                Err((e, _)) => return Err(e),
            }
        }
        jobs.sort_by(|a, b| {
            let key = |j: &Job| (j.next_run_time.is_none(), j.next_run_time);
            key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
        });
        Ok(jobs)
    }

    fn is_persistent(&self) -> bool {
        true
    }

    async fn add_jobs(&self, jobs: Vec<Job>) -> Result<(), StoreError> {
        let mut seen = HashSet::with_capacity(jobs.len());
        for job in &jobs {
            if !seen.insert(job.id.as_str()) {
                return Err(StoreError::Conflict { id: job.id.clone() });
            }
        }
        let rows = jobs
            .iter()
            .map(|j| self.encode(j))
            .collect::<Result<Vec<_>, _>>()?;
        for (n, chunk) in rows.chunks(ADD_CHUNK).enumerate() {
            if let Err(e) = self.add_chunk(chunk).await {
                // All or nothing: take back what the earlier chunks added.
                let added: Vec<&str> = rows[..n * ADD_CHUNK]
                    .iter()
                    .map(|(id, _, _)| id.as_str())
                    .collect();
                for ids in added.chunks(ADD_CHUNK) {
                    let _: Result<i64, RedisError> = self
                        .scripts
                        .remove
                        .key(&self.keys.jobs)
                        .key(&self.keys.run_times)
                        .key(&self.keys.quarantine)
                        .arg(ids)
                        .invoke_async(&mut self.conn.clone())
                        .await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
        if self
            .set_quarantine(id.as_str().as_bytes(), reason, false)
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::NotFound { id: id.clone() })
        }
    }

    async fn quarantined_jobs(&self) -> Result<Vec<QuarantinedJob>, StoreError> {
        let triples: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = self
            .scripts
            .quarantined
            .key(&self.keys.jobs)
            .key(&self.keys.run_times)
            .key(&self.keys.quarantine)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_err(e, None))?;
        let mut out: Vec<QuarantinedJob> = triples
            .into_iter()
            .filter_map(|(id, reason, raw)| {
                Some(QuarantinedJob::new(
                    JobId::new(text(id)).ok()?,
                    text(reason),
                    text(raw),
                ))
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn release_job(&self, id: &JobId) -> Result<Job, StoreError> {
        // The script releases only if the record is still the text that was decoded; a
        // concurrent update makes it answer -1, and the release reads again.
        for _ in 0..8 {
            let bytes: Option<Vec<u8>> = self
                .conn
                .clone()
                .hget(&self.keys.jobs, id.as_str())
                .await
                .map_err(|e| map_err(e, Some(id)))?;
            let Some(bytes) = bytes else {
                return Err(StoreError::NotFound { id: id.clone() });
            };
            let job = match self.decode(id.as_str(), &text(bytes.clone())) {
                Ok(job) => job,
                Err(e) => {
                    self.set_quarantine(id.as_str().as_bytes(), &reason_of(&e), false)
                        .await?;
                    return Err(e);
                }
            };
            let n: i64 = self
                .scripts
                .release
                .key(&self.keys.jobs)
                .key(&self.keys.run_times)
                .key(&self.keys.quarantine)
                .arg(id.as_str())
                .arg(&bytes)
                .arg(score(job.next_run_time))
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| map_err(e, Some(id)))?;
            match n {
                1 => return Ok(job),
                0 => return Err(StoreError::NotFound { id: id.clone() }),
                _ => continue,
            }
        }
        Err(StoreError::unavailable(
            format!("job {id} kept changing while being released"),
            None,
        ))
    }
}
