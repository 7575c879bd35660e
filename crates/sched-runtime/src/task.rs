//! What a job runs: registered tasks and closures, the [`JobContext`] they receive, and the
//! one erased form the dispatcher calls.

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use sched_core::event::{FailureKind, JobFailure};
use sched_core::job::{JobId, LocalTask, TaskRef};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::scheduler::Shared;

/// What a task is handed for each run.
#[derive(Clone, Debug)]
pub struct JobContext {
    pub(crate) job_id: JobId,
    pub(crate) store: Arc<str>,
    pub(crate) scheduled_run_time: DateTime<Utc>,
    pub(crate) attempt: u32,
    pub(crate) cancel: Arc<AttemptCancel>,
    pub(crate) args: Value,
}

/// The cancellation of one attempt, shared by its context's clones. The token a task sees
/// is a child of the run's parent token (the scheduler's, or a cluster node's), so a task
/// that cancels it cancels nothing else; it is made at the first request for it, from the
/// task or from the attempt's timeout, so a run that never asks for it costs no child
/// (making one locks the parent, and so does dropping it). A child made after the parent
/// was cancelled is born cancelled, so shutdown reaches a token asked for late as well.
pub(crate) struct AttemptCancel {
    parent: CancelParent,
    token: OnceLock<CancellationToken>,
}

/// The token an attempt's token is a child of.
pub(crate) enum CancelParent {
    /// The scheduler's (`Shared::run_cancel`), reached through the scheduler: cloning a
    /// `CancellationToken` locks it (and dropping the clone again), an `Arc` does not.
    Scheduler(Arc<Shared>),
    /// A cluster node's.
    Node(CancellationToken),
}

impl CancelParent {
    fn token(&self) -> &CancellationToken {
        match self {
            CancelParent::Scheduler(sh) => &sh.run_cancel,
            CancelParent::Node(token) => token,
        }
    }
}

impl fmt::Debug for AttemptCancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptCancel")
            .field("token", &self.token.get())
            .finish_non_exhaustive()
    }
}

impl AttemptCancel {
    /// The cancellation of an attempt whose runs stop when `parent` is cancelled.
    pub(crate) fn new(parent: CancelParent) -> AttemptCancel {
        AttemptCancel {
            parent,
            token: OnceLock::new(),
        }
    }

    /// The attempt's token, made now if this is the first request.
    pub(crate) fn token(&self) -> &CancellationToken {
        self.token.get_or_init(|| self.parent.token().child_token())
    }

    /// Cancels the attempt's token (made now if nobody asked for it yet, so a request
    /// after this still sees it cancelled).
    pub(crate) fn cancel(&self) {
        self.token().cancel();
    }
}

impl JobContext {
    /// The job's id.
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }

    /// The job's store.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The time this run was scheduled for. Together with the job id it identifies the
    /// fire, and serves as an idempotency key.
    pub fn scheduled_run_time(&self) -> DateTime<Utc> {
        self.scheduled_run_time
    }

    /// The fire's identity as text, `"<job id>@<scheduled time in µs since the epoch>"`
    /// ([`FireId::idempotency_key`](sched_stores::FireId::idempotency_key)): the same for
    /// every attempt and on every node, for a task to make its side effects idempotent.
    pub fn idempotency_key(&self) -> String {
        sched_stores::FireId::new(self.job_id.clone(), self.scheduled_run_time).idempotency_key()
    }

    /// Which attempt this is, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Fires when the run should stop: its timeout passed, or the scheduler is shutting down
    /// with [`ShutdownMode::Cancel`](crate::ShutdownMode::Cancel). Async tasks are also
    /// dropped at their next `.await` then; code that blocks should check
    /// [`is_cancelled`](CancellationToken::is_cancelled) now and then.
    pub fn cancellation_token(&self) -> &CancellationToken {
        self.cancel.token()
    }

    /// The job's arguments as JSON (a registered task gets them deserialized as well).
    pub fn args(&self) -> &Value {
        &self.args
    }
}

pub(crate) type TaskResult = Result<Value, JobFailure>;
pub(crate) type BoxTaskFuture = Pin<Box<dyn Future<Output = TaskResult> + Send + 'static>>;

/// Whether a job's JSON arguments deserialize into a task's argument type.
type ArgsCheck = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// A task in the form the dispatcher calls, with the check of its arguments (a closure
/// task takes none and accepts any).
#[derive(Clone)]
pub(crate) struct TaskFn(
    Arc<dyn Fn(JobContext) -> BoxTaskFuture + Send + Sync>,
    Option<ArgsCheck>,
);

impl fmt::Debug for TaskFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskFn")
    }
}

impl TaskFn {
    /// Whether `args` deserialize into the task's argument type: `Err` with serde's
    /// message when they do not. The dispatcher checks this before a stored job's run, to
    /// quarantine a job that can never run instead of failing it at every fire.
    pub(crate) fn check_args(&self, args: &Value) -> Result<(), String> {
        match &self.1 {
            Some(check) => check(args),
            None => Ok(()),
        }
    }

    /// Calls the task; a panic while creating the future is caught like one while running.
    pub(crate) fn call(&self, ctx: JobContext) -> BoxTaskFuture {
        match catch_unwind(AssertUnwindSafe(|| (self.0)(ctx))) {
            Ok(fut) => fut,
            Err(payload) => {
                let failure = JobFailure::new(FailureKind::Panic, panic_message(&*payload));
                Box::pin(std::future::ready(Err(failure)))
            }
        }
    }

    /// A registered task: arguments deserialized from the job's JSON.
    pub(crate) fn named<F, Fut, A, R, E>(f: F) -> TaskFn
    where
        F: Fn(JobContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
        E: fmt::Display + 'static,
    {
        // Arguments taken as JSON accept any: no check, and no deserialization at each fire.
        let check: Option<ArgsCheck> = if TypeId::of::<A>() == TypeId::of::<Value>() {
            None
        } else {
            Some(Arc::new(|args: &Value| {
                A::deserialize(args).map(drop).map_err(|e| e.to_string())
            }))
        };
        let call = Arc::new(move |ctx: JobContext| {
            let args = match serde_json::from_value::<A>(ctx.args.clone()) {
                Ok(args) => args,
                Err(e) => {
                    let failure = JobFailure::new(
                        FailureKind::Setup,
                        format!("arguments of job {} do not deserialize: {e}", ctx.job_id),
                    );
                    return Box::pin(std::future::ready(Err(failure))) as BoxTaskFuture;
                }
            };
            let fut = f(ctx, args);
            Box::pin(async move { into_task_result(fut.await) }) as BoxTaskFuture
        });
        TaskFn(call, check)
    }

    /// A closure task.
    pub(crate) fn closure<F, Fut, R, E>(f: F) -> TaskFn
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize + 'static,
        E: fmt::Display + 'static,
    {
        let call = Arc::new(move |ctx: JobContext| {
            let fut = f(ctx);
            Box::pin(async move { into_task_result(fut.await) }) as BoxTaskFuture
        });
        TaskFn(call, None)
    }
}

fn into_task_result<R: Serialize, E: fmt::Display>(r: Result<R, E>) -> TaskResult {
    match r {
        Ok(v) => serde_json::to_value(v).map_err(|e| {
            JobFailure::new(
                FailureKind::Error,
                format!("return value does not serialize: {e}"),
            )
        }),
        Err(e) => Err(JobFailure::new(FailureKind::Error, e.to_string())),
    }
}

/// A closure as a job's task (kept in memory only: such a job cannot go to a persistent
/// store). The closure gets a [`JobContext`] and returns a future of `Result<R, E>`; `R` is
/// reported as JSON in the executed event, `E`'s text in the error event.
///
/// ```
/// use sched_runtime::{closure_task, JobContext};
///
/// let task = closure_task("greet", |ctx: JobContext| async move {
///     Ok::<_, std::convert::Infallible>(format!("hello from {}", ctx.job_id()))
/// });
/// assert!(!task.is_persistable());
/// ```
pub fn closure_task<F, Fut, R, E>(label: impl Into<String>, f: F) -> TaskRef
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Serialize + 'static,
    E: fmt::Display + 'static,
{
    TaskRef::Local(LocalTask::new(label, TaskFn::closure(f)))
}

/// The closure of a job's task reference, if it was made by [`closure_task`].
pub(crate) fn local_task_fn(task: &LocalTask) -> Option<TaskFn> {
    task.downcast::<TaskFn>().cloned()
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

/// A future that turns a panic while polling into a [`FailureKind::Panic`] failure.
pub(crate) struct CatchUnwind(pub(crate) BoxTaskFuture);

impl Future for CatchUnwind {
    type Output = TaskResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskResult> {
        let fut = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(payload) => Poll::Ready(Err(JobFailure::new(
                FailureKind::Panic,
                panic_message(&*payload),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_key_is_the_fire_identity() {
        let scheduled = DateTime::from_timestamp_micros(1_795_500_000_123_456).unwrap();
        let ctx = JobContext {
            job_id: JobId::new("report").unwrap(),
            store: "default".into(),
            scheduled_run_time: scheduled,
            attempt: 2,
            cancel: Arc::new(AttemptCancel::new(CancelParent::Node(
                CancellationToken::new(),
            ))),
            args: Value::Null,
        };
        assert_eq!(ctx.idempotency_key(), "report@1795500000123456");
    }
}
