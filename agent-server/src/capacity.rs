//! How many calls run at once: a slot is taken when a call is accepted and given back when
//! the value holding it is dropped, so no path (a refused stream, a panic, an expired token)
//! can leak one.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

/// The server's call slots and its draining flag.
#[derive(Debug)]
pub struct Capacity {
    max: usize,
    taken: Arc<AtomicUsize>,
    draining: AtomicBool,
}

/// One taken slot; dropping it frees the slot.
#[derive(Debug)]
pub struct CallSlot {
    taken: Arc<AtomicUsize>,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Capacity {
    /// Room for `max` calls at once.
    pub fn new(max: usize) -> Self {
        Capacity {
            max,
            taken: Arc::new(AtomicUsize::new(0)),
            draining: AtomicBool::new(false),
        }
    }

    /// A slot, or `None` when every slot is taken or the server is draining.
    pub fn try_take(&self) -> Option<CallSlot> {
        if self.is_draining() {
            return None;
        }
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(CallSlot {
            taken: self.taken.clone(),
        })
    }

    /// Calls running or about to (their stream token is out).
    pub fn in_use(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }

    /// The most calls at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// From now on no new call is accepted (`/readyz` says so too).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the server refuses new calls because it is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_come_back_when_dropped() {
        let capacity = Capacity::new(2);
        let a = capacity.try_take().unwrap();
        let b = capacity.try_take().unwrap();
        assert!(capacity.try_take().is_none(), "full");
        assert_eq!(capacity.in_use(), 2);
        drop(a);
        let c = capacity.try_take().unwrap();
        capacity.start_draining();
        drop(b);
        assert!(capacity.try_take().is_none(), "draining");
        drop(c);
        assert_eq!(capacity.in_use(), 0);
    }
}
