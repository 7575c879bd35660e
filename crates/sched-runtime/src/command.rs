//! The built-in command task: a job that runs a program, with its exit status and output
//! captured in the run's result.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use sched_core::job::TaskRef;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::JobContext;

/// The registered name of the command task (every scheduler has it).
pub const COMMAND_TASK: &str = "sched.command";

/// The most output kept per stream, in bytes (the end is kept).
const MAX_OUTPUT: usize = 64 * 1024;

/// A program to run as a job, APScheduler-style arguments made persistable: the job's task
/// is [`COMMAND_TASK`] and its arguments are this struct as JSON, so it works in every
/// store and on every executor.
///
/// A run succeeds when the program exits with status 0; its result is
/// `{"status": 0, "stdout": "...", "stderr": "..."}` (each stream's last 64 KiB, lossy
/// UTF-8). Another status, or death by a signal, is a job error whose text names the status
/// and the end of stderr. A run that times out or is cancelled kills the program.
///
/// ```
/// use sched_runtime::Command;
///
/// let task = Command::new("pg_dump").arg("--format=custom").arg("mydb").env("PGHOST", "db").into_task();
/// assert_eq!(task.name(), Some("sched.command"));
/// assert!(task.is_persistable());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The program (looked up in `PATH` when it has no slash).
    pub program: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables set on top of the scheduler's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory (default: the scheduler's).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

impl Command {
    /// Runs `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Command {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Command {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Command {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Command {
        self.cwd = Some(dir.into());
        self
    }

    /// The task reference of a job running this command.
    pub fn into_task(self) -> TaskRef {
        let args = serde_json::to_value(&self).unwrap_or(Value::Null);
        TaskRef::named(COMMAND_TASK, args)
    }
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(MAX_OUTPUT);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The command task's body.
pub(crate) async fn run_command(_ctx: JobContext, cmd: Command) -> Result<Value, String> {
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .envs(&cmd.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropping the run (timeout, shutdown-cancel) kills the program.
        .kill_on_drop(true);
    if let Some(dir) = &cmd.cwd {
        c.current_dir(dir);
    }
    let out = c
        .output()
        .await
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.program))?;
    let stdout = tail(&out.stdout);
    let stderr = tail(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(json!({"status": 0, "stdout": stdout, "stderr": stderr})),
        Some(code) => Err(format!(
            "{:?} exited with status {code}: {}",
            cmd.program,
            stderr.trim_end()
        )),
        None => Err(format!(
            "{:?} was killed by a signal ({}): {}",
            cmd.program,
            out.status,
            stderr.trim_end()
        )),
    }
}
