//! A queue for a background thread that works in batches (the history writer, the trace
//! writer): jobs in order, each marked by whether someone waits for it, handed to the thread
//! in batches that are due.
//!
//! A session's writes come in two kinds. Most are fire-and-forget (a completed item, a tool
//! call's finish): nobody waits for them, and committing each burst of them at once costs a
//! commit, a few WAL page writes and a thread wake-up each time. A few are awaited (a tool
//! call's start record, which the tool waits for; a read; a flush): they must run at once.
//! So a batch is due when an awaited job is queued, when a full batch waits, when the queue
//! is closed, or when the oldest deferred job has waited the delay.
//! Deferred jobs ride along with the next awaited one, and a busy session commits about once
//! per turn instead of once per burst.
//!
//! Pushing a deferred job onto a queue that already holds one wakes nobody: the thread is
//! already waiting for that batch's deadline. Only the first job, the first awaited one and a
//! full batch notify the thread, so a turn's dozen writes (or twenty trace records) cost a
//! wake-up or two instead of one each. A queue may have a capacity: past it a push is refused
//! (the trace drops and counts a record rather than let a slow disk hold memory).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Whether the job's result is waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// Someone awaits the result (or durability) of this job: its batch is due at once.
    Awaited,
    /// Fire and forget: it may wait up to the commit delay for company.
    Deferred,
}

/// What [`JobQueue::next_batch`] found.
pub(crate) enum Next<J> {
    /// Jobs to run, in the order they were pushed.
    Batch(Vec<J>),
    /// Nothing arrived before the idle deadline.
    Idle,
    /// The queue is closed and empty: the thread may stop.
    Closed,
}

/// Why [`JobQueue::push`] gave a job back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused<J> {
    /// The queue holds its capacity.
    Full(J),
    /// The thread stopped.
    Stopped(J),
}

/// A FIFO of jobs shared by every handle (pushing) and the thread (taking batches).
pub(crate) struct JobQueue<J> {
    state: Mutex<State<J>>,
    ready: Condvar,
    /// The most jobs one batch takes.
    max_batch: usize,
    /// The most jobs that may wait.
    capacity: usize,
}

struct State<J> {
    jobs: VecDeque<(J, Urgency)>,
    /// How many queued jobs are [`Urgency::Awaited`].
    awaited: usize,
    /// No more jobs will be pushed (every handle is gone).
    closed: bool,
    /// The thread stopped: pushing fails, so a job's reply channel is dropped at once and its
    /// caller learns the writer is gone instead of waiting forever.
    stopped: bool,
}

impl<J> JobQueue<J> {
    /// A queue whose batches take at most `max_batch` jobs and that holds at most `capacity`.
    pub(crate) fn new(max_batch: usize, capacity: usize) -> Self {
        JobQueue {
            max_batch: max_batch.max(1),
            capacity,
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                awaited: 0,
                closed: false,
                stopped: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        // A job runs outside the lock, so a poisoned lock only means a pusher panicked while
        // holding it; the queue itself is consistent at every await point.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`; gives it back when the thread has stopped, or when the queue is full and
    /// the job is deferred.
    pub(crate) fn push(&self, job: J, urgency: Urgency) -> Result<(), Refused<J>> {
        let mut state = self.lock();
        if state.stopped {
            return Err(Refused::Stopped(job));
        }
        // Awaited jobs are barriers (a flush): few, and refusing one would leave its caller
        // waiting for nothing, so the capacity bounds only the deferred ones.
        if urgency == Urgency::Deferred && state.jobs.len() >= self.capacity {
            return Err(Refused::Full(job));
        }
        let first = state.jobs.is_empty();
        let first_awaited = urgency == Urgency::Awaited && state.awaited == 0;
        if urgency == Urgency::Awaited {
            state.awaited += 1;
        }
        state.jobs.push_back((job, urgency));
        let full = state.jobs.len() == self.max_batch;
        drop(state);
        if first || first_awaited || full {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// No more pushes will come: the thread finishes the queue and stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The thread is gone: later pushes fail, and the jobs still queued are dropped (their
    /// callers learn the writer is gone).
    pub(crate) fn stop(&self) {
        let dropped = {
            let mut state = self.lock();
            state.stopped = true;
            state.awaited = 0;
            std::mem::take(&mut state.jobs)
        };
        drop(dropped);
    }

    /// Waits for the next batch that is due (see the module docs) and takes up to a batch of
    /// jobs. Deferred jobs wait at most `delay`; waits at most until `idle_until` for a first
    /// job when one is given.
    pub(crate) fn next_batch(&self, delay: Duration, idle_until: Option<Instant>) -> Next<J> {
        let max_batch = self.max_batch;
        let mut state = self.lock();
        while state.jobs.is_empty() {
            if state.closed {
                return Next::Closed;
            }
            state = match idle_until {
                None => self
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Next::Idle;
                    }
                    self.ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        let due = Instant::now() + delay;
        while state.awaited == 0 && !state.closed && state.jobs.len() < max_batch {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .ready
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let state = &mut *state;
        let take = state.jobs.len().min(max_batch);
        let mut batch = Vec::with_capacity(take);
        for (job, urgency) in state.jobs.drain(..take) {
            if urgency == Urgency::Awaited {
                state.awaited -= 1;
            }
            batch.push(job);
        }
        Next::Batch(batch)
    }
}

/// Held by the thread that serves a queue: marks the queue stopped when the thread ends,
/// even by a panic, so nobody queues work (or waits) for a thread that is gone.
pub(crate) struct StopOnExit<J>(pub(crate) Arc<JobQueue<J>>);

impl<J> Drop for StopOnExit<J> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn an_awaited_job_takes_the_deferred_ones_with_it_at_once() {
        let queue = JobQueue::new(8, usize::MAX);
        queue.push(1, Urgency::Deferred).unwrap();
        queue.push(2, Urgency::Deferred).unwrap();
        queue.push(3, Urgency::Awaited).unwrap();
        let started = Instant::now();
        let Next::Batch(batch) = queue.next_batch(LONG, None) else {
            panic!("a batch was due");
        };
        assert_eq!(batch, [1, 2, 3]);
        // Due because of the awaited job, not the (long) delay.
        assert!(started.elapsed() < LONG);
    }

    #[test]
    fn deferred_jobs_wait_for_the_delay_or_a_full_batch() {
        let queue = JobQueue::new(2, usize::MAX);
        queue.push(1, Urgency::Deferred).unwrap();
        let Next::Batch(batch) = queue.next_batch(Duration::from_millis(20), None) else {
            panic!("due after the delay");
        };
        assert_eq!(batch, [1]);
        for n in 0..3 {
            queue.push(n, Urgency::Deferred).unwrap();
        }
        let Next::Batch(batch) = queue.next_batch(LONG, None) else {
            panic!("a full batch is due at once");
        };
        assert_eq!(batch, [0, 1]);
    }

    #[test]
    fn a_waiting_thread_is_woken_by_an_awaited_job_and_by_close() {
        let queue = Arc::new(JobQueue::new(8, usize::MAX));
        let thread = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    match queue.next_batch(LONG, None) {
                        Next::Batch(batch) => seen.push(batch),
                        Next::Idle => unreachable!("no idle deadline"),
                        Next::Closed => return seen,
                    }
                }
            })
        };
        queue.push("deferred", Urgency::Deferred).unwrap();
        queue.push("awaited", Urgency::Awaited).unwrap();
        queue.push("last", Urgency::Deferred).unwrap();
        queue.close();
        let seen = thread.join().unwrap();
        assert_eq!(seen.concat(), ["deferred", "awaited", "last"]);
    }

    #[test]
    fn an_idle_deadline_returns_and_full_or_stopped_queues_refuse_jobs() {
        let queue = JobQueue::<u8>::new(8, 1);
        let until = Instant::now() + Duration::from_millis(5);
        assert!(matches!(queue.next_batch(LONG, Some(until)), Next::Idle));
        queue.push(1, Urgency::Deferred).unwrap();
        assert_eq!(queue.push(2, Urgency::Deferred), Err(Refused::Full(2)));
        queue.push(2, Urgency::Awaited).unwrap();
        queue.stop();
        assert_eq!(queue.push(3, Urgency::Awaited), Err(Refused::Stopped(3)));
    }
}
