//! The service model: how Ready pods serve the traffic in one tick, in `fluid` or `request`
//! mode, and the per-tick accounting that follows.
//!
//! **Fluid** (per tick `[t0, t1)`, `dt = t1 - t0`): `A` requests arrive (Poisson around
//! `rate(t0) * dt`, or exactly that when arrivals are deterministic) and join a FIFO backlog of
//! per-tick segments. With `n` Ready pods each serving `mu = cpu_limit / cpu_per_request_ms`
//! requests per second, up to `n * mu * dt` requests are served oldest first; a segment that is
//! older than `service.timeout_s` at the end of the tick is dropped; with no Ready pod, new
//! arrivals are dropped at once (no endpoints). A served request's latency is its wait in the
//! backlog plus its sojourn at a pod, exponential with rate `theta = mu (1 - sigma)` of the
//! GI/M/1 queue at the tick's utilization (see
//! [`crate::queueing`]), `rho` taken from the offered rate `rate(t0) / (n mu)`; when the backlog is not empty the pods are saturated and the sojourn is
//! the service time alone (`theta = mu`), the queueing being the backlog's. `theta` is floored
//! at `ln(100) / timeout` so no quantile below p99 exceeds the timeout. CPU used by a Ready pod
//! is `served / n / dt * cpu_per_request_ms` plus `idle_cpu_milli`.
//!
//! **Request** mode: every arrival is an event at its own time (a Poisson process of the
//! tick's rate, or evenly spaced). It goes round-robin to the next Ready pod, a FIFO server:
//! if the work queued ahead of it would make it wait longer than the timeout it is dropped,
//! else its service time (cost / CPU limit) is drawn and its latency is exact. A pod's CPU use
//! is its busy time in the tick times its limit. Requests queued on a pod that crashes or
//! disappears are dropped; a deleted pod finishes what it accepted.
//!
//! Both modes conserve requests: arrived = served + dropped + backlog, at every tick.

use crate::cluster::Lifecycle;
use crate::config::{CostDistribution, ServiceMode};
use crate::engine::{exp1, fluid_arrivals, Simulation};
use crate::event::Event;
use crate::queueing::{
    gi_m1_sigma, sample_quantile, PodArrivals, LN_100, LN_20, RHO_EVALUATED_MAX,
};

const LN_2: f64 = std::f64::consts::LN_2;
use crate::workload::Arrivals;
use crate::SimTime;

impl Simulation {
    /// Serves the tick that ends now and accounts for it.
    pub(crate) fn tick(&mut self) {
        self.refresh_serving();
        let mut stats = match self.sc.service.mode {
            ServiceMode::Fluid => self.fluid_tick(),
            ServiceMode::Request => self.request_tick(),
        };
        self.tick_index += 1;
        self.ring_slot += 1;
        if self.ring_slot == self.window_ticks.max(1) {
            self.ring_slot = 0;
        }
        let (req_cpu, _) = (self.sc.pod.cpu_request_milli as f64, ());
        let (mut billed, mut live, mut ready) = (0u32, 0u32, 0u32);
        for p in &self.pods {
            billed += u32::from(p.billed());
            if p.live() {
                live += 1;
                ready += u32::from(p.ready);
            }
        }
        stats.time_s = self.now.as_secs_f64();
        stats.desired_replicas = self.desired;
        stats.ready_replicas = ready;
        stats.pending_replicas = live - ready;
        stats.billed_pods = billed;
        stats.cpu_requested_milli = f64::from(billed) * req_cpu;
        let s = &self.sc.service;
        stats.slo_violated = (stats.served > 0.0 && stats.p95_latency_ms > s.slo_p95_ms)
            || (stats.arrivals > 0.0 && stats.dropped / stats.arrivals > s.slo_max_dropped_ratio);
        self.scrape_acc.add(&stats);
        self.stats.add(&stats, s.tick_s);
        self.last_tick = stats;
        if self.sc.service.mode == ServiceMode::Request {
            self.generate_arrivals(self.now);
        }
    }

    /// CPU a pod's container burns beyond serving: idle use plus the start-up burst.
    fn overhead_cpu(&self, i: usize) -> f64 {
        let pc = &self.sc.pod;
        let idle = self.sc.service.idle_cpu_milli as f64;
        if pc.startup_cpu_burst_milli == 0 {
            return idle;
        }
        match self.pods[i].container_started {
            Some(t) if (self.now - t).as_secs_f64() <= pc.startup_cpu_burst_s => {
                idle + pc.startup_cpu_burst_milli as f64
            }
            _ => idle,
        }
    }

    fn pod_running(&self, i: usize) -> bool {
        matches!(
            self.pods[i].lifecycle,
            Lifecycle::Running | Lifecycle::Terminating
        )
    }

    fn fluid_tick(&mut self) -> crate::TickStats {
        let dt = self.sc.service.tick_s;
        let t1 = self.now.as_secs_f64();
        let t0 = t1 - dt;
        let timeout = self.sc.service.timeout_s;
        let mu = self
            .sc
            .service
            .pod_service_rate(self.sc.pod.cpu_limit_milli);
        let rate = self.traffic.rate_at(SimTime::from_secs_f64(t0));
        let arrivals = fluid_arrivals(
            &mut self.rng_traffic,
            &mut self.poisson_cache,
            self.arrivals_kind,
            rate * dt,
        );
        let n = self.serving.len();
        let mut dropped = 0.0;
        if n == 0 {
            dropped += arrivals;
        } else if arrivals > 0.0 {
            self.backlog.push_back((t0 + 0.5 * dt, arrivals));
        }
        // Serve oldest first.
        let rate_all = n as f64 * mu;
        let cap = rate_all * dt;
        let mut served = 0.0;
        self.waits.clear();
        while let Some(seg) = self.backlog.front_mut() {
            let room = cap - served;
            if room <= 0.0 {
                break;
            }
            let take = seg.1.min(room);
            let moment = t0 + (served + 0.5 * take) / rate_all;
            self.waits.push((take, (moment - seg.0).max(0.0)));
            served += take;
            seg.1 -= take;
            if seg.1 <= 1e-12 {
                // Return float dust to the served total so conservation stays exact.
                served += seg.1;
                self.backlog.pop_front();
            }
        }
        while self.backlog.front().is_some_and(|s| t1 - s.0 > timeout) {
            dropped += self.backlog.pop_front().map_or(0.0, |s| s.1);
        }
        let backlog: f64 = self.backlog.iter().map(|s| s.1).sum::<f64>() + 0.0;
        // Per-pod sojourn rate.
        let theta_min = 100f64.ln() / timeout;
        // The per-pod queue's steady state follows the offered rate, not this tick's Poisson
        // count: GI/M/1 latency is convex in rho, so per-tick counts would overstate it.
        let rho = if cap > 0.0 {
            (rate * dt).min(cap) / cap
        } else {
            0.0
        };
        let theta = if backlog > 0.0 {
            mu
        } else {
            let pa = match self.arrivals_kind {
                Arrivals::Poisson => PodArrivals::Erlang(n.max(1) as u32),
                Arrivals::Deterministic => PodArrivals::Deterministic,
            };
            let key = (pa, rho.min(RHO_EVALUATED_MAX).to_bits());
            let sigma = match self.sigma_cache {
                Some((k, s)) if k == key => Some(s),
                _ => {
                    let s = gi_m1_sigma(pa, rho.min(RHO_EVALUATED_MAX));
                    if let Some(s) = s {
                        self.sigma_cache = Some((key, s));
                    }
                    s
                }
            };
            sigma.map_or(mu, |s| mu * (1.0 - s))
        }
        .max(theta_min);
        let (p50, p95, p99);
        if self.waits.iter().all(|w| w.1 == 0.0) {
            // Quantiles of Exp(theta): -ln(1 - q) / theta.
            (p50, p95, p99) = (LN_2 / theta, LN_20 / theta, LN_100 / theta);
            if served > 0.0 {
                self.stats.fluid_latency.add(served, 0.0, theta);
            }
        } else {
            self.mixture.clear();
            for &(m, w) in &self.waits {
                self.mixture.push(m, w, theta);
                self.stats.fluid_latency.add(m, w, theta);
            }
            (p50, p95, p99) = (
                self.mixture.quantile(0.5),
                self.mixture.quantile(0.95),
                self.mixture.quantile(0.99),
            );
        }
        let mean_wait = if served > 0.0 {
            self.waits.iter().map(|w| w.0 * w.1).sum::<f64>() / served
        } else {
            0.0
        };
        // CPU and memory per pod.
        let per_pod_rate = if n > 0 { served / n as f64 / dt } else { 0.0 };
        let serve_cpu = per_pod_rate * self.sc.service.cpu_per_request_ms;
        let inflight = per_pod_rate * (mean_wait + 1.0 / theta);
        let mem = self.sc.pod.memory_base_bytes as f64
            + inflight * self.sc.pod.memory_per_inflight_bytes as f64;
        let (mut used, mut ready_used, mut ready_req) = (0.0, 0.0, 0.0);
        let req = self.sc.pod.cpu_request_milli as f64;
        for i in 0..self.pods.len() {
            if !self.pod_running(i) {
                continue;
            }
            let serving = self.pods[i].serving();
            let u = self.overhead_cpu(i) + if serving { serve_cpu } else { 0.0 };
            let idx = self.ring_slot;
            let window = self.window_ticks.max(1);
            let p = &mut self.pods[i];
            let old = self.usage.record(idx, p.usage_slot, u);
            p.usage_sum += u - old;
            p.usage_filled = (p.usage_filled + 1).min(window);
            p.memory_bytes = if serving {
                mem as u64
            } else {
                self.sc.pod.memory_base_bytes
            };
            used += u;
            if serving {
                ready_used += u;
                ready_req += req;
            }
        }
        let q = if served > 0.0 {
            [p50, p95, p99]
        } else {
            [0.0; 3]
        };
        tick_stats(
            [arrivals, served, dropped, backlog],
            [used, ready_used, ready_req],
            q,
        )
    }

    /// Schedules the arrival events of the tick `[t0, t0 + dt)` (request mode).
    pub(crate) fn generate_arrivals(&mut self, t0: SimTime) {
        let dt = self.sc.service.tick_s;
        let start = t0.as_secs_f64();
        let stop = start + dt;
        let rate = self.traffic.rate_at(t0);
        if rate <= 0.0 {
            self.det_next_s = stop;
            return;
        }
        let mut t = match self.arrivals_kind {
            Arrivals::Poisson => start + exp1(&mut self.rng_traffic) / rate,
            Arrivals::Deterministic => self.det_next_s.max(start),
        };
        while t < stop {
            self.arrival_times.push_back(t);
            let ms = ((t * 1000.0).floor() as u64).min(SimTime::from_secs_f64(stop).0 - 1);
            self.queue_arrival(SimTime(ms));
            t += match self.arrivals_kind {
                Arrivals::Poisson => exp1(&mut self.rng_traffic) / rate,
                Arrivals::Deterministic => 1.0 / rate,
            };
        }
        self.det_next_s = t;
    }

    fn queue_arrival(&mut self, at: SimTime) {
        self.push_event(at, Event::RequestArrival);
    }

    /// One request arrives (request mode).
    pub(crate) fn request_arrival(&mut self) {
        let Some(a) = self.arrival_times.pop_front() else {
            return;
        };
        self.tick_arrivals += 1.0;
        self.refresh_serving();
        let n = self.serving.len();
        if n == 0 {
            self.tick_dropped += 1.0;
            return;
        }
        let i = self.serving[self.rr % n];
        self.rr = self.rr.wrapping_add(1);
        let timeout = self.sc.service.timeout_s;
        let mean_s = self.sc.service.cpu_per_request_ms / self.sc.pod.cpu_limit_milli as f64;
        let s = match self.sc.service.cost_distribution {
            CostDistribution::Exponential => mean_s * exp1(&mut self.rng_service),
            CostDistribution::Deterministic => mean_s,
        };
        let p = &mut self.pods[i];
        let wait = (p.free_at_s - a).max(0.0);
        if wait > timeout {
            self.tick_dropped += 1.0;
            return;
        }
        let start = a + wait;
        let end = start + s;
        p.free_at_s = end;
        p.queue.push_back((start, end));
        self.tick_latencies.push(end - a);
        self.stats.request_latency.record(end - a);
    }

    fn request_tick(&mut self) -> crate::TickStats {
        let dt = self.sc.service.tick_s;
        let t1 = self.now.as_secs_f64();
        let t0 = t1 - dt;
        let limit = self.sc.pod.cpu_limit_milli as f64;
        let req = self.sc.pod.cpu_request_milli as f64;
        let (mut served, mut backlog, mut used, mut ready_used, mut ready_req) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..self.pods.len() {
            let running = self.pod_running(i);
            let overhead = if running { self.overhead_cpu(i) } else { 0.0 };
            let idx = self.ring_slot;
            let window = self.window_ticks.max(1);
            let base = self.sc.pod.memory_base_bytes;
            let per = self.sc.pod.memory_per_inflight_bytes;
            let p = &mut self.pods[i];
            let mut busy = 0.0;
            for &(s, e) in &p.queue {
                if s >= t1 {
                    break;
                }
                busy += (e.min(t1) - s.max(t0)).max(0.0);
            }
            while p.queue.front().is_some_and(|q| q.1 <= t1) {
                p.queue.pop_front();
                served += 1.0;
            }
            backlog += p.queue.len() as f64;
            if running {
                let u = overhead + busy / dt * limit;
                let old = self.usage.record(idx, p.usage_slot, u);
                p.usage_sum += u - old;
                p.usage_filled = (p.usage_filled + 1).min(window);
                p.memory_bytes = base + per * p.queue.len() as u64;
                used += u;
                if p.serving() {
                    ready_used += u;
                    ready_req += req;
                }
            }
        }
        let arrivals = std::mem::take(&mut self.tick_arrivals);
        let dropped = std::mem::take(&mut self.tick_dropped);
        let lat = &mut self.tick_latencies;
        let (p50, p95, p99) = (
            sample_quantile(lat, 0.5),
            sample_quantile(lat, 0.95),
            sample_quantile(lat, 0.99),
        );
        lat.clear();
        tick_stats(
            [arrivals, served, dropped, backlog],
            [used, ready_used, ready_req],
            [p50, p95, p99],
        )
    }
}

/// The service-model part of a tick's stats: `[arrivals, served, dropped, backlog]` in requests,
/// `[used, ready_used, ready_requested]` CPU in millicores, latency quantiles in seconds.
fn tick_stats(requests: [f64; 4], cpu: [f64; 3], quantiles_s: [f64; 3]) -> crate::TickStats {
    let [arrivals, served, dropped, backlog] = requests;
    let [used, ready_used, ready_req] = cpu;
    crate::TickStats {
        arrivals,
        served,
        dropped,
        backlog,
        cpu_used_milli: used,
        cpu_utilization: if ready_req > 0.0 {
            ready_used / ready_req
        } else {
            0.0
        },
        p50_latency_ms: quantiles_s[0] * 1000.0,
        p95_latency_ms: quantiles_s[1] * 1000.0,
        p99_latency_ms: quantiles_s[2] * 1000.0,
        ..Default::default()
    }
}
