//! PLACEHOLDER facade.
pub use sched_core;
