//! What every burn-based agent shares: the CPU device, reproducible network initialisation,
//! and named random streams derived from a run seed.
//!
//! burn's `Device::seed` may seed a generator global to the backend and is reproducible only
//! in a single-threaded program (burn-tensor 0.22.1, `device.rs`). Agents train in parallel
//! (one per rayon thread), so every network is seeded and initialised under one process-wide
//! lock ([`seeded_init`]); every other random choice (exploration, replay sampling, data
//! shuffling) uses the agent's own [`rand_chacha::ChaCha8Rng`] from [`derive_seed`].

use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

static INIT_LOCK: Mutex<()> = Mutex::new(());

/// The device agents train and run on: burn's pure-Rust CPU backend (`flex`), the default
/// so that everything builds and runs without a GPU. With the `wgpu` feature of this crate and
/// `NIMBUSGUARD_DEVICE=wgpu` in the environment, burn's wgpu device instead.
pub fn device() -> Device {
    #[cfg(feature = "wgpu")]
    if std::env::var("NIMBUSGUARD_DEVICE").is_ok_and(|v| v == "wgpu") {
        return Device::wgpu(Default::default());
    }
    Device::flex()
}

/// Runs `init` (which creates a network's parameters on `device`) right after seeding
/// `device` with `seed`, holding a process-wide lock so that no other thread's seeding or
/// initialisation interleaves: the same seed gives the same initial weights in any program.
pub fn seeded_init<T>(device: &Device, seed: u64, init: impl FnOnce() -> T) -> T {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    init()
}

/// Forces every lazily created parameter of `module` to take its value now, in a fixed order.
///
/// burn 0.22 creates parameters lazily (burn-nn's `Initializer::init_with` returns
/// `Param::uninitialized`): a layer's random weights are drawn from the device's generator at
/// their first use, not in `init`. Call this inside the closure given to [`seeded_init`], so
/// the values are drawn from the seeded generator while the lock is held; otherwise another
/// thread may reseed the (global) generator before the first forward pass.
pub fn materialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// SplitMix64 finaliser (Steele, Lea and Flood 2014): a bijective 64-bit mixer.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seed of the random stream named `component` within the run seeded by `run_seed`
/// (SplitMix64 of the run seed, xor the FNV-1a hash of the name, mixed again). Distinct names
/// give independent streams; the same name and seed give the same stream.
pub fn derive_seed(run_seed: u64, component: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in component.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    splitmix64(splitmix64(run_seed) ^ h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_component_and_repeat_by_seed() {
        assert_eq!(derive_seed(7, "a"), derive_seed(7, "a"));
        assert_ne!(derive_seed(7, "a"), derive_seed(7, "b"));
        assert_ne!(derive_seed(7, "a"), derive_seed(8, "a"));
        // SplitMix64 of 0 is its published first output for state 0.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn parameters_are_drawn_at_first_use_unless_materialized() {
        use burn::nn::LinearConfig;
        let device = Device::flex();
        let weights = |l: &burn::nn::Linear| l.weight.val().into_data().try_to_vec::<f32>();
        let lazy = seeded_init(&device, 5, || LinearConfig::new(4, 4).init(&device));
        let eager = seeded_init(&device, 5, || {
            let l = LinearConfig::new(4, 4).init(&device);
            materialize(&l);
            l
        });
        // Another seeding between init and first use (another thread, say).
        let _other = seeded_init(&device, 6, || {
            let l = LinearConfig::new(4, 4).init(&device);
            materialize(&l);
            l
        });
        let fresh = seeded_init(&device, 5, || {
            let l = LinearConfig::new(4, 4).init(&device);
            materialize(&l);
            l
        });
        assert_eq!(weights(&eager), weights(&fresh));
        assert_ne!(weights(&lazy), weights(&fresh));
    }
}
