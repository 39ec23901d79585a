//! Nodes, pods and their bookkeeping: the scheduler's placement rule and the ReplicaSet
//! controller's scale-down order. The event handling that moves pods through their lifecycle
//! lives in [`crate::engine`].

use std::collections::VecDeque;

use crate::state::{PodPhase, PodView};
use crate::SimTime;

/// A node of the cluster.
#[derive(Debug, Clone)]
pub struct Node {
    /// Allocatable CPU, millicores.
    pub cpu_milli: u64,
    /// Allocatable memory, bytes.
    pub memory_bytes: u64,
    /// CPU requested by pods bound here, millicores.
    pub cpu_used_milli: u64,
    /// Memory requested by pods bound here, bytes.
    pub memory_used_bytes: u64,
    /// The node is down (failed, not yet recovered).
    pub failed: bool,
}

impl Node {
    /// Whether a pod with these requests fits.
    pub fn fits(&self, cpu_milli: u64, memory_bytes: u64) -> bool {
        !self.failed
            && self.cpu_used_milli + cpu_milli <= self.cpu_milli
            && self.memory_used_bytes + memory_bytes <= self.memory_bytes
    }

    /// Least-allocated score after placing the pod (higher = emptier), the mean free share of
    /// CPU and memory, as kube-scheduler's `LeastAllocated` strategy.
    pub fn score(&self, cpu_milli: u64, memory_bytes: u64) -> f64 {
        let c = 1.0 - (self.cpu_used_milli + cpu_milli) as f64 / self.cpu_milli as f64;
        let m = 1.0 - (self.memory_used_bytes + memory_bytes) as f64 / self.memory_bytes as f64;
        0.5 * (c + m)
    }
}

/// Where a pod is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Created, waiting for a node (API phase Pending, no start time).
    Unscheduled,
    /// Bound to a node; image pull and container start in progress (phase Pending).
    Starting,
    /// Container running (phase Running); Ready once its readiness delay has passed.
    Running,
    /// Container crashed and waits for its restart back-off (phase Running, not Ready).
    CrashBackoff,
    /// Deleted, shutting down (has a deletion timestamp); receives no new traffic.
    Terminating,
}

/// One pod, with the per-pod state of both service modes and of the metrics pipeline.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Unique id, increasing in creation order.
    pub id: u64,
    /// Node index once scheduled.
    pub node: Option<usize>,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// Container incarnation; events of older incarnations are stale.
    pub incarnation: u32,
    /// `status.startTime`.
    pub start_time: Option<SimTime>,
    /// When the current container started running.
    pub container_started: Option<SimTime>,
    /// `Ready` condition.
    pub ready: bool,
    /// Last transition of the `Ready` condition.
    pub ready_transition: Option<SimTime>,
    /// Consecutive crashes (for the back-off).
    pub crashes: u32,
    /// This pod's column in the simulation's [`UsageWindows`].
    pub usage_slot: usize,
    /// Running sum of this pod's usage window, millicore-ticks.
    pub usage_sum: f64,
    /// Ticks recorded in the ring (saturates at its length).
    pub usage_filled: usize,
    /// Current working set, bytes.
    pub memory_bytes: u64,
    /// Latest metrics-server sample: (CPU millicores, memory bytes, timestamp, window s).
    pub sample: Option<(u64, u64, SimTime, u64)>,
    /// Request mode: accepted requests' service intervals `(start_s, end_s)` in FIFO order.
    pub queue: VecDeque<(f64, f64)>,
    /// Request mode: when the pod's server is free again, seconds.
    pub free_at_s: f64,
}

impl Pod {
    /// A fresh, unscheduled pod whose CPU usage window is column `usage_slot` of the
    /// simulation's [`UsageWindows`] (which must be zeroed).
    pub fn new(id: u64, usage_slot: usize) -> Self {
        Self {
            id,
            node: None,
            lifecycle: Lifecycle::Unscheduled,
            incarnation: 0,
            start_time: None,
            container_started: None,
            ready: false,
            ready_transition: None,
            crashes: 0,
            usage_slot,
            usage_sum: 0.0,
            usage_filled: 0,
            memory_bytes: 0,
            sample: None,
            queue: VecDeque::new(),
            free_at_s: 0.0,
        }
    }

    /// Whether the pod receives traffic (Ready and not deleted).
    pub fn serving(&self) -> bool {
        self.ready && self.lifecycle == Lifecycle::Running
    }

    /// Whether the pod counts towards the ReplicaSet's replicas (not terminating).
    pub fn live(&self) -> bool {
        self.lifecycle != Lifecycle::Terminating
    }

    /// Whether the pod occupies a node (and is billed): scheduled, terminating included.
    pub fn billed(&self) -> bool {
        self.node.is_some()
    }

    /// ReplicaSet deletion rank: lower is deleted first. Kubernetes' `ActivePods` order:
    /// unscheduled before scheduled, Pending before Running, not Ready before Ready, Ready for
    /// a shorter time first, more restarts first, newer first.
    pub fn deletion_key(
        &self,
    ) -> (
        u8,
        u8,
        u8,
        std::cmp::Reverse<SimTime>,
        std::cmp::Reverse<u32>,
        std::cmp::Reverse<u64>,
    ) {
        use std::cmp::Reverse;
        (
            u8::from(self.node.is_some()),
            u8::from(self.lifecycle != Lifecycle::Starting),
            u8::from(self.ready),
            Reverse(self.ready_transition.unwrap_or(SimTime::ZERO)),
            Reverse(self.crashes),
            Reverse(self.id),
        )
    }

    /// What the API shows of this pod.
    pub fn view(&self, cpu_request_milli: u64, memory_request_bytes: u64) -> PodView {
        let phase = match self.lifecycle {
            Lifecycle::Unscheduled | Lifecycle::Starting => PodPhase::Pending,
            Lifecycle::Running | Lifecycle::CrashBackoff | Lifecycle::Terminating => {
                PodPhase::Running
            }
        };
        PodView {
            id: self.id,
            phase,
            ready: self.ready,
            ready_last_transition: self.ready_transition,
            start_time: self.start_time,
            deleting: self.lifecycle == Lifecycle::Terminating,
            cpu_request_milli,
            memory_request_bytes,
            cpu_usage_milli: self.sample.map(|s| s.0),
            memory_usage_bytes: self.sample.map(|s| s.1),
            metric_timestamp: self.sample.map(|s| s.2),
            metric_window_s: self.sample.map_or(0, |s| s.3),
        }
    }
}

/// Every pod's CPU usage over the metrics window, one value per tick, in one contiguous
/// table laid out tick-major (`ring[tick_slot * capacity + pod_column]`): a tick writes all
/// pods' values side by side instead of touching one heap buffer per pod.
#[derive(Debug, Clone)]
pub struct UsageWindows {
    window: usize,
    capacity: usize,
    ring: Vec<f64>,
    free: Vec<usize>,
    next: usize,
}

impl UsageWindows {
    /// Windows of `window` ticks (at least 1).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            capacity: 0,
            ring: Vec::new(),
            free: Vec::new(),
            next: 0,
        }
    }

    /// Window length, ticks.
    pub fn window(&self) -> usize {
        self.window
    }

    /// A zeroed column for a new pod (grows the table when full; the lowest free column is
    /// reused first, so allocation is deterministic).
    pub fn alloc(&mut self) -> usize {
        let col = match self.free.pop() {
            Some(c) => c,
            None => {
                if self.next == self.capacity {
                    let cap = (self.capacity * 2).max(16);
                    let mut ring = vec![0.0; cap * self.window];
                    for r in 0..self.window {
                        let (old, new) = (r * self.capacity, r * cap);
                        ring[new..new + self.capacity]
                            .copy_from_slice(&self.ring[old..old + self.capacity]);
                    }
                    self.ring = ring;
                    self.capacity = cap;
                }
                self.next += 1;
                self.next - 1
            }
        };
        self.clear(col);
        col
    }

    /// Returns a column to the free list.
    pub fn release(&mut self, col: usize) {
        self.free.push(col);
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Zeroes a column.
    pub fn clear(&mut self, col: usize) {
        for r in 0..self.window {
            self.ring[r * self.capacity + col] = 0.0;
        }
    }

    /// Stores `milli` for column `col` at tick slot `slot` (the tick index modulo the window);
    /// returns the value it replaces.
    #[inline]
    pub fn record(&mut self, slot: usize, col: usize, milli: f64) -> f64 {
        let k = slot.min(self.window - 1) * self.capacity + col;
        std::mem::replace(&mut self.ring[k], milli)
    }
}

/// Index of the node the scheduler picks for a pod with these requests (highest
/// least-allocated score, lowest index on ties), or `None` if it fits nowhere.
pub fn pick_node(nodes: &[Node], cpu_milli: u64, memory_bytes: u64) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, n) in nodes.iter().enumerate() {
        if n.fits(cpu_milli, memory_bytes) {
            let s = n.score(cpu_milli, memory_bytes);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cpu: u64, used: u64) -> Node {
        Node {
            cpu_milli: cpu,
            memory_bytes: 1 << 30,
            cpu_used_milli: used,
            memory_used_bytes: 0,
            failed: false,
        }
    }

    #[test]
    fn usage_windows_grow_and_reuse_columns() {
        let mut u = UsageWindows::new(3);
        let cols: Vec<usize> = (0..20).map(|_| u.alloc()).collect();
        assert_eq!(cols, (0..20).collect::<Vec<_>>());
        // Values written before the table grew past 16 columns are kept.
        assert_eq!(u.record(1, 5, 7.0), 0.0);
        assert_eq!(u.record(1, 5, 8.0), 7.0);
        u.release(5);
        u.release(2);
        assert_eq!(u.alloc(), 2);
        assert_eq!(u.alloc(), 5);
        // A reused column starts at zero.
        assert_eq!(u.record(1, 5, 1.0), 0.0);
    }

    #[test]
    fn scheduler_picks_least_allocated_and_respects_capacity() {
        let nodes = vec![node(4000, 3000), node(4000, 1000), node(4000, 1000)];
        // Nodes 1 and 2 tie; the lower index wins.
        assert_eq!(pick_node(&nodes, 500, 1), Some(1));
        assert_eq!(pick_node(&nodes, 3500, 1), None);
        let mut down = nodes.clone();
        down[1].failed = true;
        assert_eq!(pick_node(&down, 500, 1), Some(2));
    }

    #[test]
    fn replicaset_deletes_unscheduled_then_not_ready_then_newest() {
        let mut a = Pod::new(1, 0);
        a.node = Some(0);
        a.lifecycle = Lifecycle::Running;
        a.ready = true;
        a.ready_transition = Some(SimTime(10));
        let mut b = a.clone();
        b.id = 2;
        b.ready_transition = Some(SimTime(20));
        let mut c = Pod::new(3, 2);
        c.node = Some(0);
        c.lifecycle = Lifecycle::Running;
        let d = Pod::new(4, 3);
        let mut pods = [a, b, c, d];
        pods.sort_by_key(|p| p.deletion_key());
        let order: Vec<u64> = pods.iter().map(|p| p.id).collect();
        assert_eq!(order, vec![4, 3, 2, 1]);
    }
}
