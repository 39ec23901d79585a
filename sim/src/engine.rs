//! [`Simulation`]: the discrete-event engine. It owns the event queue, the nodes and pods, the
//! traffic, the service model (see [`crate::service`]) and the metrics pipeline, and exposes
//! what a controller may see through [`Simulation::observe_into`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};

use crate::accounting::{EpisodeStats, EpisodeSummary, TickAggregate, TickStats};
use crate::cluster::{pick_node, Lifecycle, Node, Pod, UsageWindows};
use crate::config::{Scenario, ServiceMode};
use crate::event::{Event, EventQueue};
use crate::queueing::LatencyMixture;
use crate::state::ClusterState;
use crate::trace::RateSeries;
use crate::workload::Arrivals;
use crate::{rng, Error, Result, SimTime};

/// What the Prometheus-style scrape last saw.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scraped {
    pub rate: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub queue: f64,
    pub dropped_ratio: f64,
}

/// A running simulation of one Deployment on one cluster, for one traffic window and seed.
///
/// Time advances only through [`Simulation::advance`]; decisions enter through
/// [`Simulation::set_desired_replicas`]. Same scenario, traffic and seed: same trajectory,
/// bit for bit.
pub struct Simulation {
    pub(crate) sc: Scenario,
    pub(crate) traffic: Arc<RateSeries>,
    pub(crate) arrivals_kind: Arrivals,
    pub(crate) now: SimTime,
    pub(crate) end: SimTime,
    pub(crate) tick_ms: u64,
    pub(crate) tick_index: u64,
    pub(crate) ring_slot: usize,
    next_tick: SimTime,
    next_metrics: SimTime,
    next_scrape: SimTime,
    queue: EventQueue,
    pub(crate) nodes: Vec<Node>,
    provisioning: u32,
    pub(crate) pods: Vec<Pod>,
    next_pod_id: u64,
    pub(crate) desired: u32,
    pub(crate) window_ticks: usize,
    pub(crate) usage: UsageWindows,
    rng_startup: ChaCha8Rng,
    rng_failure: ChaCha8Rng,
    pub(crate) rng_traffic: ChaCha8Rng,
    pub(crate) rng_service: ChaCha8Rng,
    pub(crate) serving: Vec<usize>,
    pub(crate) serving_dirty: bool,
    // fluid state
    pub(crate) backlog: VecDeque<(f64, f64)>,
    pub(crate) mixture: LatencyMixture,
    pub(crate) waits: Vec<(f64, f64)>,
    pub(crate) poisson_cache: Option<(u64, rand_distr::Poisson<f64>)>,
    pub(crate) sigma_cache: Option<((crate::queueing::PodArrivals, u64), f64)>,
    // request-mode state
    pub(crate) arrival_times: VecDeque<f64>,
    pub(crate) det_next_s: f64,
    pub(crate) rr: usize,
    pub(crate) tick_latencies: Vec<f64>,
    pub(crate) tick_arrivals: f64,
    pub(crate) tick_dropped: f64,
    // metrics
    pub(crate) scraped: Scraped,
    pub(crate) scrape_acc: TickAggregate,
    pub(crate) last_tick: TickStats,
    pub(crate) stats: EpisodeStats,
}

impl Simulation {
    /// Builds a simulation at t = 0 with `deployment.initial_replicas` pods Ready.
    ///
    /// `traffic` gives the request rate over time (requests per second); the episode ends when
    /// it does. `seed` seeds every random stream (traffic, start-up delays, failures, request
    /// costs), each derived from it by component name.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the scenario does not validate, or
    /// [`Error::EmptyWindow`] if the traffic is shorter than one tick.
    pub fn new(
        scenario: &Scenario,
        traffic: Arc<RateSeries>,
        arrivals: Arrivals,
        seed: u64,
    ) -> Result<Self> {
        scenario.validate()?;
        let tick_ms = (scenario.service.tick_s * 1000.0).round() as u64;
        let end = SimTime::from_secs_f64(traffic.duration_s());
        if end.as_millis() < tick_ms {
            return Err(Error::EmptyWindow {
                path: "<traffic>".into(),
                message: format!(
                    "traffic lasts {} s, shorter than one tick ({} s)",
                    traffic.duration_s(),
                    scenario.service.tick_s
                ),
            });
        }
        let c = &scenario.cluster;
        let node = Node {
            cpu_milli: c.node_cpu_milli,
            memory_bytes: c.node_memory_bytes,
            cpu_used_milli: 0,
            memory_used_bytes: 0,
            failed: false,
        };
        let window_ticks = (scenario.metrics.window_s / scenario.service.tick_s).round() as usize;
        let mut sim = Simulation {
            sc: scenario.clone(),
            traffic,
            arrivals_kind: arrivals,
            now: SimTime::ZERO,
            end,
            tick_ms,
            tick_index: 0,
            ring_slot: 0,
            next_tick: SimTime(tick_ms),
            next_metrics: SimTime::from_secs_f64(scenario.metrics.resolution_s),
            next_scrape: SimTime::from_secs_f64(scenario.metrics.scrape_interval_s),
            queue: EventQueue::new(),
            nodes: vec![node; c.nodes as usize],
            provisioning: 0,
            pods: Vec::new(),
            next_pod_id: 1,
            desired: scenario.deployment.initial_replicas,
            window_ticks,
            usage: UsageWindows::new(window_ticks),
            rng_startup: rng::stream(seed, "startup"),
            rng_failure: rng::stream(seed, "failure"),
            rng_traffic: rng::stream(seed, "traffic"),
            rng_service: rng::stream(seed, "service"),
            serving: Vec::new(),
            serving_dirty: true,
            backlog: VecDeque::new(),
            mixture: LatencyMixture::default(),
            waits: Vec::new(),
            poisson_cache: None,
            sigma_cache: None,
            arrival_times: VecDeque::new(),
            det_next_s: 0.0,
            rr: 0,
            tick_latencies: Vec::new(),
            tick_arrivals: 0.0,
            tick_dropped: 0.0,
            scraped: Scraped::default(),
            scrape_acc: TickAggregate::default(),
            last_tick: TickStats::default(),
            stats: EpisodeStats::default(),
        };
        // Initial pods: already running and Ready at t = 0 (a warm Deployment).
        for _ in 0..sim.desired {
            let mut pod = Pod::new(sim.next_pod_id, sim.usage.alloc());
            sim.next_pod_id += 1;
            let req = (
                scenario.pod.cpu_request_milli,
                scenario.pod.memory_request_bytes,
            );
            if let Some(n) = pick_node(&sim.nodes, req.0, req.1) {
                sim.nodes[n].cpu_used_milli += req.0;
                sim.nodes[n].memory_used_bytes += req.1;
                pod.node = Some(n);
                pod.lifecycle = Lifecycle::Running;
                pod.start_time = Some(SimTime::ZERO);
                pod.container_started = Some(SimTime::ZERO);
                pod.ready = true;
                pod.ready_transition = Some(SimTime::ZERO);
                pod.memory_bytes = scenario.pod.memory_base_bytes;
            }
            sim.pods.push(pod);
        }
        for i in 0..sim.pods.len() {
            if sim.pods[i].lifecycle == Lifecycle::Running {
                sim.schedule_crash(i);
            }
        }
        for n in 0..sim.nodes.len() {
            sim.schedule_node_failure(n);
        }
        sim.schedule_pass();
        if sim.sc.service.mode == ServiceMode::Request {
            sim.generate_arrivals(SimTime::ZERO);
        }
        Ok(sim)
    }

    /// Current simulated time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// When the traffic, and so the episode, ends.
    pub fn end(&self) -> SimTime {
        self.end
    }

    /// Whether the episode is over (time reached the end of the traffic).
    pub fn is_finished(&self) -> bool {
        self.now >= self.end
    }

    /// The scenario this simulation runs.
    pub fn scenario(&self) -> &Scenario {
        &self.sc
    }

    /// Current `spec.replicas`.
    pub fn desired_replicas(&self) -> u32 {
        self.desired
    }

    /// Sets `spec.replicas` to `replicas` clamped to `[min_replicas, max_replicas]`; the
    /// ReplicaSet controller creates or deletes pods at once. Returns the value set. A change
    /// counts as one scaling action.
    pub fn set_desired_replicas(&mut self, replicas: u32) -> u32 {
        let d = &self.sc.deployment;
        let r = replicas.clamp(d.min_replicas, d.max_replicas);
        if r != self.desired {
            self.desired = r;
            self.stats.scaling_actions += 1;
            self.reconcile();
        }
        r
    }

    /// The last completed tick.
    pub fn last_tick(&self) -> &TickStats {
        &self.last_tick
    }

    /// Running totals of the episode so far.
    pub fn episode_stats(&self) -> &EpisodeStats {
        &self.stats
    }

    /// The episode's summary figures so far.
    pub fn summary(&self) -> EpisodeSummary {
        self.stats.summary()
    }

    /// Requests waiting or in service right now (`+ 0.0` turns the `-0.0` an empty float sum
    /// gives into `0`).
    pub fn backlog(&self) -> f64 {
        match self.sc.service.mode {
            ServiceMode::Fluid => self.backlog.iter().map(|s| s.1).sum::<f64>() + 0.0,
            ServiceMode::Request => {
                self.pods.iter().map(|p| p.queue.len() as f64).sum::<f64>() + 0.0
            }
        }
    }

    /// Runs the simulation for `d` (or until the end of the traffic), calling `on_tick` after
    /// every accounting tick.
    pub fn advance(&mut self, d: Duration, mut on_tick: impl FnMut(&TickStats)) {
        let target = (self.now + d).min(self.end);
        loop {
            let heap_t = self.queue.peek_time();
            let periodic = self.next_tick.min(self.next_metrics).min(self.next_scrape);
            let next = heap_t.map_or(periodic, |h| h.min(periodic));
            if next > target {
                break;
            }
            self.now = next;
            // Same-time order: queued events first, then tick, metrics, scrape.
            let ev = if heap_t == Some(next) {
                self.queue.pop().map(|(_, e)| e).unwrap_or(Event::Tick)
            } else if self.next_tick == next {
                self.next_tick = SimTime(next.0 + self.tick_ms);
                Event::Tick
            } else if self.next_metrics == next {
                self.next_metrics = next + secs(self.sc.metrics.resolution_s);
                Event::MetricsResolution
            } else {
                self.next_scrape = next + secs(self.sc.metrics.scrape_interval_s);
                Event::Scrape
            };
            self.handle(ev, &mut on_tick);
        }
        self.now = target;
    }

    fn handle(&mut self, ev: Event, on_tick: &mut impl FnMut(&TickStats)) {
        match ev {
            Event::Tick => {
                self.tick();
                on_tick(&self.last_tick);
            }
            Event::MetricsResolution => self.metrics_resolution(),
            Event::Scrape => self.scrape(),
            Event::ContainerStarted { pod, incarnation } => {
                if let Some(i) = self.find(pod, incarnation) {
                    if self.pods[i].lifecycle == Lifecycle::Starting {
                        self.container_up(i);
                    }
                }
            }
            Event::PodReady { pod, incarnation } => {
                if let Some(i) = self.find(pod, incarnation) {
                    let p = &mut self.pods[i];
                    if p.lifecycle == Lifecycle::Running && !p.ready {
                        p.ready = true;
                        p.ready_transition = Some(self.now);
                        p.crashes = 0;
                        self.serving_dirty = true;
                    }
                }
            }
            Event::PodCrashed { pod, incarnation } => {
                if let Some(i) = self.find(pod, incarnation) {
                    if self.pods[i].lifecycle == Lifecycle::Running {
                        self.crash(i);
                    }
                }
            }
            Event::ContainerRestarted { pod, incarnation } => {
                if let Some(i) = self.find(pod, incarnation) {
                    if self.pods[i].lifecycle == Lifecycle::CrashBackoff {
                        self.container_up(i);
                    }
                }
            }
            Event::PodTerminated { pod } => {
                if let Ok(i) = self.pods.binary_search_by_key(&pod, |p| p.id) {
                    self.remove_pod(i);
                    self.schedule_pass();
                }
            }
            Event::NodeProvisioned => {
                let c = &self.sc.cluster;
                self.nodes.push(Node {
                    cpu_milli: c.node_cpu_milli,
                    memory_bytes: c.node_memory_bytes,
                    cpu_used_milli: 0,
                    memory_used_bytes: 0,
                    failed: false,
                });
                self.provisioning -= 1;
                let n = self.nodes.len() - 1;
                self.schedule_node_failure(n);
                self.schedule_pass();
            }
            Event::NodeFailed { node } => {
                self.nodes[node].failed = true;
                let mut i = 0;
                while i < self.pods.len() {
                    if self.pods[i].node == Some(node) {
                        self.remove_pod(i);
                    } else {
                        i += 1;
                    }
                }
                self.queue.push(
                    self.now + secs(self.sc.cluster.node_recovery_s),
                    Event::NodeRecovered { node },
                );
                self.reconcile();
            }
            Event::NodeRecovered { node } => {
                self.nodes[node].failed = false;
                self.schedule_node_failure(node);
                self.schedule_pass();
            }
            Event::RequestArrival => self.request_arrival(),
        }
    }

    pub(crate) fn push_event(&mut self, at: SimTime, ev: Event) {
        self.queue.push(at, ev);
    }

    fn find(&self, pod: u64, incarnation: u32) -> Option<usize> {
        let i = self.pods.binary_search_by_key(&pod, |p| p.id).ok()?;
        (self.pods[i].incarnation == incarnation).then_some(i)
    }

    /// The ReplicaSet controller: create or delete pods until live pods equal `desired`.
    fn reconcile(&mut self) {
        let live = self.pods.iter().filter(|p| p.live()).count() as u32;
        if live < self.desired {
            for _ in live..self.desired {
                self.pods
                    .push(Pod::new(self.next_pod_id, self.usage.alloc()));
                self.next_pod_id += 1;
            }
            self.schedule_pass();
        } else if live > self.desired {
            let mut order: Vec<usize> = (0..self.pods.len())
                .filter(|&i| self.pods[i].live())
                .collect();
            order.sort_by_key(|&i| self.pods[i].deletion_key());
            let mut victims: Vec<u64> = order[..(live - self.desired) as usize]
                .iter()
                .map(|&i| self.pods[i].id)
                .collect();
            victims.sort_unstable();
            for id in victims {
                let Ok(i) = self.pods.binary_search_by_key(&id, |p| p.id) else {
                    continue;
                };
                if self.pods[i].node.is_none() {
                    self.remove_pod(i);
                } else {
                    let p = &mut self.pods[i];
                    p.lifecycle = Lifecycle::Terminating;
                    if p.ready {
                        p.ready = false;
                        p.ready_transition = Some(self.now);
                    }
                    self.queue.push(
                        self.now + secs(self.sc.pod.termination_delay_s),
                        Event::PodTerminated { pod: id },
                    );
                }
            }
            self.serving_dirty = true;
        }
    }

    /// Binds unscheduled pods to nodes (oldest first); asks for a node when one does not fit.
    fn schedule_pass(&mut self) {
        let (cpu, mem) = (
            self.sc.pod.cpu_request_milli,
            self.sc.pod.memory_request_bytes,
        );
        for i in 0..self.pods.len() {
            if self.pods[i].lifecycle != Lifecycle::Unscheduled {
                continue;
            }
            match pick_node(&self.nodes, cpu, mem) {
                Some(n) => {
                    self.nodes[n].cpu_used_milli += cpu;
                    self.nodes[n].memory_used_bytes += mem;
                    let delay = self.startup_delay();
                    let p = &mut self.pods[i];
                    p.node = Some(n);
                    p.lifecycle = Lifecycle::Starting;
                    p.start_time = Some(self.now);
                    let ev = Event::ContainerStarted {
                        pod: p.id,
                        incarnation: p.incarnation,
                    };
                    self.queue.push(self.now + delay, ev);
                }
                None => {
                    let total = self.nodes.len() as u32 + self.provisioning;
                    if total < self.sc.cluster.max_nodes && self.provisioning == 0 {
                        self.provisioning += 1;
                        let t = self.now + secs(self.sc.cluster.node_provisioning_delay_s);
                        self.queue.push(t, Event::NodeProvisioned);
                    }
                    break;
                }
            }
        }
    }

    fn startup_delay(&mut self) -> Duration {
        let (m, s) = (
            self.sc.pod.startup_delay_mean_s,
            self.sc.pod.startup_delay_std_s,
        );
        if m <= 0.0 {
            return Duration::ZERO;
        }
        if s <= 0.0 {
            return secs(m);
        }
        // Log-normal with mean m and standard deviation s.
        let var = (1.0 + (s / m).powi(2)).ln();
        let ln = LogNormal::new(m.ln() - var / 2.0, var.sqrt()).expect("validated parameters");
        secs(ln.sample(&mut self.rng_startup))
    }

    fn container_up(&mut self, i: usize) {
        let now = self.now;
        let ready_at = now + secs(self.sc.pod.readiness_delay_s);
        let base = self.sc.pod.memory_base_bytes;
        let p = &mut self.pods[i];
        p.lifecycle = Lifecycle::Running;
        p.container_started = Some(now);
        p.memory_bytes = base;
        p.usage_sum = 0.0;
        p.usage_filled = 0;
        self.usage.clear(p.usage_slot);
        self.queue.push(
            ready_at,
            Event::PodReady {
                pod: p.id,
                incarnation: p.incarnation,
            },
        );
        self.schedule_crash(i);
    }

    fn schedule_crash(&mut self, i: usize) {
        let rate = self.sc.pod.crash_rate_per_hour / 3600.0;
        if rate > 0.0 {
            let dt = Exp::new(rate)
                .expect("positive rate")
                .sample(&mut self.rng_failure);
            let p = &self.pods[i];
            self.queue.push(
                self.now + secs(dt),
                Event::PodCrashed {
                    pod: p.id,
                    incarnation: p.incarnation,
                },
            );
        }
    }

    fn schedule_node_failure(&mut self, node: usize) {
        let rate = self.sc.cluster.node_failure_rate_per_hour / 3600.0;
        if rate > 0.0 {
            let dt = Exp::new(rate)
                .expect("positive rate")
                .sample(&mut self.rng_failure);
            self.queue
                .push(self.now + secs(dt), Event::NodeFailed { node });
        }
    }

    fn crash(&mut self, i: usize) {
        let backoff = (self.sc.pod.restart_backoff_s
            * 2f64.powi(self.pods[i].crashes.min(16) as i32))
        .min(300.0);
        let now = self.now;
        let p = &mut self.pods[i];
        if p.ready {
            p.ready = false;
            p.ready_transition = Some(now);
        }
        p.lifecycle = Lifecycle::CrashBackoff;
        p.crashes += 1;
        p.incarnation += 1;
        p.sample = None;
        let lost = p.queue.len() as f64;
        p.queue.clear();
        p.free_at_s = 0.0;
        self.tick_dropped += lost;
        let ev = Event::ContainerRestarted {
            pod: p.id,
            incarnation: p.incarnation,
        };
        self.queue.push(now + secs(backoff), ev);
        self.serving_dirty = true;
    }

    /// Removes pod `i` (terminated, or lost with its node), releasing its node's resources;
    /// requests still queued on it are dropped.
    fn remove_pod(&mut self, i: usize) {
        let p = self.pods.remove(i);
        self.usage.release(p.usage_slot);
        if let Some(n) = p.node {
            let node = &mut self.nodes[n];
            node.cpu_used_milli -= self.sc.pod.cpu_request_milli;
            node.memory_used_bytes -= self.sc.pod.memory_request_bytes;
        }
        self.tick_dropped += p.queue.len() as f64;
        self.serving_dirty = true;
    }

    pub(crate) fn refresh_serving(&mut self) {
        if self.serving_dirty {
            self.serving.clear();
            self.serving
                .extend((0..self.pods.len()).filter(|&i| self.pods[i].serving()));
            self.serving_dirty = false;
        }
    }

    /// metrics-server: a new sample per pod whose container runs (CPU averaged over the
    /// window, memory at this instant); pods without a running container have none.
    fn metrics_resolution(&mut self) {
        let now = self.now;
        let window = self.sc.metrics.window_s.round() as u64;
        for p in &mut self.pods {
            let running = matches!(p.lifecycle, Lifecycle::Running | Lifecycle::Terminating);
            p.sample = if running && p.usage_filled > 0 {
                let cpu = (p.usage_sum / p.usage_filled as f64).round().max(0.0) as u64;
                Some((cpu, p.memory_bytes, now, window))
            } else {
                None
            };
        }
    }

    /// Prometheus: request rate, latency and drops over the last scrape interval.
    fn scrape(&mut self) {
        let a = self.scrape_acc;
        let [p50, p95, p99] = a.latency_ms();
        self.scraped = Scraped {
            rate: a.arrivals / self.sc.metrics.scrape_interval_s,
            p50,
            p95,
            p99,
            queue: self.backlog(),
            dropped_ratio: a.dropped_ratio(),
        };
        self.scrape_acc = TickAggregate::default();
    }

    /// Fills `state` with what a controller sees now (no reallocation once warmed up).
    pub fn observe_into(&self, state: &mut ClusterState) {
        let (cpu, mem) = (
            self.sc.pod.cpu_request_milli,
            self.sc.pod.memory_request_bytes,
        );
        state.time = self.now;
        state.desired_replicas = self.desired;
        state.pods.clear();
        let (mut live, mut ready) = (0u32, 0u32);
        for p in &self.pods {
            state.pods.push(p.view(cpu, mem));
            if p.live() {
                live += 1;
                ready += u32::from(p.ready);
            }
        }
        state.status_replicas = live;
        state.ready_replicas = ready;
        state.pending_replicas = live - ready;
        let s = &self.scraped;
        state.request_rate_per_s = s.rate;
        state.p50_latency_ms = s.p50;
        state.p95_latency_ms = s.p95;
        state.p99_latency_ms = s.p99;
        state.queue_length = s.queue;
        state.dropped_ratio = s.dropped_ratio;
    }

    /// A fresh [`ClusterState`] of what a controller sees now.
    pub fn observe(&self) -> ClusterState {
        let mut s = ClusterState::default();
        self.observe_into(&mut s);
        s
    }
}

/// A `Duration` of `s` seconds rounded to whole milliseconds (negative -> zero).
pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_millis((s * 1000.0).round().max(0.0) as u64)
}

/// Draws the traffic's arrivals for one tick `[t0, t0 + dt)` in fluid mode.
/// The Poisson distribution is rebuilt only when the mean changes (trace bins span many ticks).
pub(crate) fn fluid_arrivals(
    rng: &mut ChaCha8Rng,
    cache: &mut Option<(u64, rand_distr::Poisson<f64>)>,
    kind: Arrivals,
    mean: f64,
) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    match kind {
        Arrivals::Deterministic => mean,
        Arrivals::Poisson => {
            let key = mean.to_bits();
            if cache.as_ref().is_none_or(|(k, _)| *k != key) {
                *cache = rand_distr::Poisson::new(mean).ok().map(|p| (key, p));
            }
            cache.as_ref().map_or(mean, |(_, p)| p.sample(rng))
        }
    }
}

/// The offered rate (requests per second) and the arrivals (requests) of every tick of a
/// `fluid`-mode simulation of `scenario` and `traffic` with `seed`, in tick order: the same
/// draws, from the same stream in the same order, as [`Simulation`] makes, so a clairvoyant
/// reference policy (`agents::oracle`) can know the future load exactly. In `request` mode the
/// simulation draws arrival times instead; the counts returned are then only a realisation of
/// the same process, not the simulation's.
pub fn fluid_tick_arrivals(
    scenario: &Scenario,
    traffic: &RateSeries,
    arrivals: Arrivals,
    seed: u64,
) -> Vec<(f64, f64)> {
    let tick_ms = (scenario.service.tick_s * 1000.0).round() as u64;
    let end = SimTime::from_secs_f64(traffic.duration_s());
    let dt = scenario.service.tick_s;
    let mut rng = rng::stream(seed, "traffic");
    let mut cache = None;
    let mut out = Vec::new();
    if tick_ms == 0 {
        return out;
    }
    let mut t1 = SimTime(tick_ms);
    while t1 <= end {
        let t0 = t1.as_secs_f64() - dt;
        let rate = traffic.rate_at(SimTime::from_secs_f64(t0));
        out.push((
            rate,
            fluid_arrivals(&mut rng, &mut cache, arrivals, rate * dt),
        ));
        t1 = SimTime(t1.0 + tick_ms);
    }
    out
}

/// A unit-mean exponential draw.
pub(crate) fn exp1(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random();
    -(1.0 - u).ln()
}
