//! The closed set of simulator events and the event queue.
//!
//! **Ordering guarantee.** Events are delivered in order of `(time, insertion sequence)`: an
//! earlier time first, and events scheduled for the same millisecond in the order they were
//! scheduled (FIFO). Together with integer time and seeded streams this makes every run
//! bit-for-bit reproducible.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::SimTime;

/// Everything that can happen in the simulator. Handled by one exhaustive `match` in
/// [`crate::Simulation`]. Pod events carry the pod's `incarnation` so events of a container that
/// crashed or was deleted meanwhile are recognised as stale and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// End of an accounting tick: serve traffic, account, record metrics.
    Tick,
    /// metrics-server publishes a new CPU/memory sample per pod.
    MetricsResolution,
    /// Prometheus scrapes request rate, latency and queue length.
    Scrape,
    /// The pod's container is running (start-up delay over); readiness probe starts.
    ContainerStarted {
        /// Pod id.
        pod: u64,
        /// Container incarnation the event belongs to.
        incarnation: u32,
    },
    /// The pod's readiness probe succeeds: it becomes Ready and receives traffic.
    PodReady {
        /// Pod id.
        pod: u64,
        /// Container incarnation.
        incarnation: u32,
    },
    /// The pod's container crashes.
    PodCrashed {
        /// Pod id.
        pod: u64,
        /// Container incarnation.
        incarnation: u32,
    },
    /// A crashed container is restarted after its back-off.
    ContainerRestarted {
        /// Pod id.
        pod: u64,
        /// Incarnation of the crashed container.
        incarnation: u32,
    },
    /// A deleted pod is gone.
    PodTerminated {
        /// Pod id.
        pod: u64,
    },
    /// A provisioned node joins the cluster.
    NodeProvisioned,
    /// A node fails; its pods fail with it.
    NodeFailed {
        /// Node index.
        node: usize,
    },
    /// A failed node is usable again.
    NodeRecovered {
        /// Node index.
        node: usize,
    },
    /// One request arrives (request mode only).
    RequestArrival,
}

/// A min-queue of events ordered by `(time, insertion sequence)`.
#[derive(Debug, Default, Clone)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<(SimTime, u64, Event)>>,
    seq: u64,
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `event` at `time`.
    pub fn push(&mut self, time: SimTime, event: Event) {
        self.heap.push(Reverse((time, self.seq, event)));
        self.seq += 1;
    }

    /// Time of the next event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Removes and returns the next event.
    pub fn pop(&mut self) -> Option<(SimTime, Event)> {
        self.heap.pop().map(|Reverse((t, _, e))| (t, e))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops every pending event.
    pub fn clear(&mut self) {
        self.heap.clear();
        self.seq = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_are_fifo() {
        let mut q = EventQueue::new();
        q.push(SimTime(5), Event::Scrape);
        q.push(SimTime(1), Event::PodTerminated { pod: 2 });
        q.push(SimTime(5), Event::Tick);
        q.push(SimTime(1), Event::PodTerminated { pod: 1 });
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![
                (SimTime(1), Event::PodTerminated { pod: 2 }),
                (SimTime(1), Event::PodTerminated { pod: 1 }),
                (SimTime(5), Event::Scrape),
                (SimTime(5), Event::Tick),
            ]
        );
    }
}
