//! Jobs added before the scheduler starts: kept in the order they were added, with a set of
//! their ids so that adding one checks for a duplicate in O(1) rather than by scanning the
//! list (a program that adds 100,000 jobs before `start` would otherwise pay for 5·10⁹
//! comparisons).

use std::collections::HashSet;

use sched_core::job::{Job, JobId};

/// A job waiting for the scheduler to start, with how it was added.
pub(crate) struct Pending {
    pub(crate) job: Job,
    pub(crate) replace_existing: bool,
    pub(crate) explicit_next: bool,
}

/// The pending jobs, in the order they were added; ids are unique.
#[derive(Default)]
pub(crate) struct PendingJobs {
    list: Vec<Pending>,
    ids: HashSet<JobId, foldhash::fast::RandomState>,
}

impl PendingJobs {
    /// Where the job with this id is in the list.
    pub(crate) fn position(&self, id: &JobId) -> Option<usize> {
        if !self.ids.contains(id) {
            return None;
        }
        self.list.iter().position(|p| p.job.id == *id)
    }

    /// The job at `i` (from [`position`](PendingJobs::position)).
    pub(crate) fn get(&self, i: usize) -> &Pending {
        &self.list[i]
    }

    /// The job at `i`, to change; its id must stay as it is.
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut Pending {
        &mut self.list[i]
    }

    /// Adds a job whose id is not pending (the caller checked with `position`).
    pub(crate) fn push(&mut self, p: Pending) {
        debug_assert!(!self.ids.contains(&p.job.id), "pending ids are unique");
        self.ids.insert(p.job.id.clone());
        self.list.push(p);
    }

    /// Removes the job at `i`.
    pub(crate) fn remove(&mut self, i: usize) -> Pending {
        let p = self.list.remove(i);
        self.ids.remove(&p.job.id);
        p
    }

    /// Keeps the jobs `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Pending) -> bool) {
        let ids = &mut self.ids;
        self.list.retain(|p| {
            let kept = keep(p);
            if !kept {
                ids.remove(&p.job.id);
            }
            kept
        });
    }

    /// Takes every job out, in order.
    pub(crate) fn take(&mut self) -> Vec<Pending> {
        self.ids.clear();
        std::mem::take(&mut self.list)
    }

    /// Puts jobs back after a failed start (under the `ops` lock, so nothing was added
    /// since `take`).
    pub(crate) fn restore(&mut self, jobs: impl IntoIterator<Item = Pending>) {
        for p in jobs {
            self.push(p);
        }
    }

    /// The pending jobs, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pending> {
        self.list.iter()
    }
}
