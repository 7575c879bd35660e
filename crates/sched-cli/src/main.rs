//! `sched`: the command-line tool of the sched job scheduler.
//!
//! Today it has one subcommand, `sched next`, which prints the next fire times of any
//! trigger spec. Argument parsing lives in [`args`], the work in [`next`]; `main` only
//! connects them to the process's streams and exit status.

mod args;
mod next;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    // Usage errors print clap's message and exit with status 2; --help and --version exit 0.
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Next(args) => next::run(args, &mut io::stdin().lock(), &mut io::stdout().lock()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // If stderr is gone too there is no one left to tell.
            let _ = writeln!(io::stderr(), "error: {e}");
            e.exit_code()
        }
    }
}
