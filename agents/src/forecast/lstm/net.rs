//! The LSTM forecaster's network: a burn module for training and a plain-Rust copy of its
//! weights for fast single-window inference.
//!
//! Architecture (the seed design): `num_layers` stacked LSTM layers of `hidden` units over a
//! window of one input feature, dropout between layers (training only), a linear head on the
//! last time step's hidden state of the top layer.
//!
//! Each layer is written here with fused gates rather than with `burn::nn::Lstm`: one input
//! projection `x W_x + b` of shape `[d_in, 4H]` computed for the whole window at once, and one
//! recurrent projection `h W_h` of shape `[H, 4H]` per step, gates ordered input, forget,
//! output, cell (PyTorch's `nn.LSTM` equations; Hochreiter & Schmidhuber 1997 with the forget
//! gate of Gers et al. 2000). `burn::nn::Lstm` runs eight separate matrix products per step;
//! fusing them cut the number of tensor operations per step (and the autodiff graph) by about
//! half, which matters on the CPU backend. The forget-gate bias starts at 1 (Jozefowicz et al.
//! 2015), the other weights as burn's `Linear` (uniform in `+-1/sqrt(fan_in)`).
//!
//! Inference ([`Weights::forward`]) runs on a plain-Rust copy of the weights, repacked in column
//! panels, with `exp` approximated (relative error under 1e-6): about 2.5 ms for the seed's
//! 3 x 128 network over 60 steps on one core, against 4.3 ms for [`LstmNet::forward`] with a
//! batch of one and 6 ms for a straightforward loop over the row-major weights (memory-bound:
//! every weight read from L3 at every step).
//!
//! Dropout masks come from the caller's seeded RNG, not from burn's global one, so training
//! stays reproducible when several networks train on parallel threads (STYLE.md lesson 4).

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Shape of the network (what a saved record must match).
#[derive(burn::config::Config, Debug)]
pub struct LstmNetConfig {
    /// Stacked LSTM layers (>= 1).
    pub num_layers: usize,
    /// Hidden units per layer (>= 1).
    pub hidden: usize,
}

/// One LSTM layer with fused gates (see the module docs).
#[derive(Module, Debug)]
pub struct FusedLstm {
    /// Input projection, weight `[d_in, 4H]`, bias `[4H]`.
    pub input: Linear,
    /// Recurrent projection, weight `[H, 4H]`, no bias.
    pub recurrent: Linear,
}

/// The stacked LSTM and its head.
#[derive(Module, Debug)]
pub struct LstmNet {
    /// LSTM layers, bottom (reads the series) first.
    pub layers: Vec<FusedLstm>,
    /// Linear head `[H, 1]` on the top layer's last hidden state.
    pub head: Linear,
}

impl LstmNetConfig {
    /// Builds the network on `device` (parameters are created lazily by burn; see
    /// [`materialize`]).
    pub fn init(&self, device: &Device) -> LstmNet {
        let h = self.hidden;
        let layers = (0..self.num_layers)
            .map(|i| {
                let d_in = if i == 0 { 1 } else { h };
                let mut input = LinearConfig::new(d_in, 4 * h).init(device);
                // Forget-gate bias 1, the rest 0.
                let bias: Vec<f32> = (0..4 * h)
                    .map(|j| if (h..2 * h).contains(&j) { 1.0 } else { 0.0 })
                    .collect();
                input.bias = Some(Param::from_data(TensorData::new(bias, [4 * h]), device));
                let recurrent = LinearConfig::new(h, 4 * h)
                    .with_bias(false)
                    .with_initializer(Initializer::Uniform {
                        min: -1.0 / (h as f64).sqrt(),
                        max: 1.0 / (h as f64).sqrt(),
                    })
                    .init(device);
                FusedLstm { input, recurrent }
            })
            .collect();
        LstmNet {
            layers,
            head: LinearConfig::new(h, 1).init(device),
        }
    }
}

pub use crate::nn::materialize;

/// Inverted dropout mask of `len` values: 0 with probability `p`, else `1/(1-p)`.
fn dropout_mask(rng: &mut ChaCha8Rng, len: usize, p: f64) -> Vec<f32> {
    let keep = (1.0 / (1.0 - p)) as f32;
    (0..len)
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect()
}

impl FusedLstm {
    /// Runs the layer over one input per step (`[batch, d_in]` each, in time order) and
    /// returns every step's hidden state `[batch, H]`, or only the last one unless
    /// `all_steps`.
    ///
    /// The inputs are kept as separate per-step tensors rather than one `[batch, window, d]`
    /// tensor sliced per step: burn's backward of a slice allocates a zero tensor of the whole
    /// input, so slicing a window 60 times per layer cost more than the products themselves.
    fn forward(&self, inputs: Vec<Tensor<2>>, all_steps: bool) -> Vec<Tensor<2>> {
        let h4 = self.recurrent.weight.dims()[1];
        let hd = h4 / 4;
        let Some(first) = inputs.first() else {
            return Vec::new();
        };
        let batch = first.dims()[0];
        let device = first.device();
        let mut hidden = Tensor::<2>::zeros([batch, hd], &device);
        let mut cell = Tensor::<2>::zeros([batch, hd], &device);
        let mut outputs = Vec::with_capacity(if all_steps { inputs.len() } else { 1 });
        // tanh(x) = 2 sigmoid(2x) - 1: one sigmoid over all four gates (the cell gate's
        // pre-activation doubled by this scale) replaces a sigmoid and a tanh; burn's CPU tanh
        // (libm's tanhf) cost about three times its sigmoid.
        let scale: Vec<f32> = (0..h4)
            .map(|j| if j < 3 * hd { 1.0 } else { 2.0 })
            .collect();
        let scale = Tensor::<2>::from_data(TensorData::new(scale, [1, h4]), &device);
        for x in inputs {
            let gates = self.input.forward(x) + self.recurrent.forward(hidden);
            let act = sigmoid(gates * scale.clone());
            let i = act.clone().slice([0..batch, 0..hd]);
            let f = act.clone().slice([0..batch, hd..2 * hd]);
            let o = act.clone().slice([0..batch, 2 * hd..3 * hd]);
            let candidate = act
                .slice([0..batch, 3 * hd..h4])
                .mul_scalar(2.0)
                .sub_scalar(1.0);
            cell = f * cell + i * candidate;
            let cell_act = sigmoid(cell.clone().mul_scalar(2.0))
                .mul_scalar(2.0)
                .sub_scalar(1.0);
            hidden = o * cell_act;
            if all_steps {
                outputs.push(hidden.clone());
            }
        }
        if !all_steps {
            outputs.push(hidden);
        }
        outputs
    }
}

impl LstmNet {
    /// Forecasts from `x: [batch, window, 1]` (normalised series) to `[batch, 1]` (normalised
    /// target). With `dropout = Some((rng, p))` (training), each layer's hidden states but the
    /// top one's are multiplied by inverted-dropout masks drawn from `rng` (one per step and
    /// unit, as PyTorch's `nn.LSTM` does between layers).
    pub fn forward(&self, x: Tensor<3>, mut dropout: Option<(&mut ChaCha8Rng, f64)>) -> Tensor<2> {
        let [batch, window, _] = x.dims();
        let device = x.device();
        // The window as one [batch, 1] tensor per step (cheap: one input feature).
        let mut seq: Vec<Tensor<2>> = x.reshape([batch, window]).chunk(window, 1);
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            seq = layer.forward(seq, i < last);
            if i < last {
                if let Some((rng, p)) = dropout.as_mut().filter(|d| d.1 > 0.0) {
                    seq = seq
                        .into_iter()
                        .map(|h| {
                            let dims = h.dims();
                            let mask = dropout_mask(rng, dims[0] * dims[1], *p);
                            h * Tensor::from_data(TensorData::new(mask, dims), &device)
                        })
                        .collect();
                }
            }
        }
        match seq.pop() {
            Some(top) => self.head.forward(top),
            // No layers (never built by LstmNetConfig, which has at least one).
            None => Tensor::zeros([batch, 1], &device),
        }
    }

    /// Copies the weights out of the module for [`Weights::forward`].
    pub fn weights(&self) -> Weights {
        let values = |t: Tensor<2>| -> Vec<f32> {
            t.into_data()
                .convert::<f32>()
                .try_into_vec()
                .unwrap_or_default()
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let w_x = l.input.weight.val();
                let [d_in, h4] = w_x.dims();
                let w_h = l.recurrent.weight.val();
                let hd = w_h.dims()[0];
                LayerWeights {
                    d_in,
                    w_x: Panels::pack(&values(w_x), d_in, h4),
                    bias: l
                        .input
                        .bias
                        .as_ref()
                        .map(|b| values(b.val().unsqueeze_dim(0)))
                        .unwrap_or_default(),
                    w_h: Panels::pack(&values(w_h), hd, h4),
                }
            })
            .collect();
        Weights {
            layers,
            head_w: values(self.head.weight.val()),
            head_b: self
                .head
                .bias
                .as_ref()
                .and_then(|b| values(b.val().unsqueeze_dim(0)).first().copied())
                .unwrap_or(0.0),
        }
    }
}

/// One layer's weights, row-major as burn stores them (`y = x W + b`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    d_in: usize,
    /// `[d_in, 4H]`, packed.
    w_x: Panels,
    /// `[4H]`.
    bias: Vec<f32>,
    /// `[H, 4H]`, packed.
    w_h: Panels,
}

/// The network's weights as plain vectors, for single-window inference without burn's
/// per-operation overhead (about 20 M multiply-adds for 3 x 128 units over 60 steps).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    layers: Vec<LayerWeights>,
    /// `[H]`.
    head_w: Vec<f32>,
    head_b: f32,
}

/// Columns per register block of the inference kernels (8 SSE registers of accumulators).
const BLOCK: usize = 32;

/// `acc += x * row` over one panel row (`row.len() == BLOCK`; a shorter row adds nothing).
#[inline(always)]
fn axpy_block(acc: &mut [f32; BLOCK], x: f32, row: &[f32]) {
    if let Ok(row) = <&[f32; BLOCK]>::try_from(row) {
        for jj in 0..BLOCK {
            acc[jj] += x * row[jj];
        }
    }
}

/// A `k x cols` row-major weight matrix repacked as column panels: panel `b` holds columns
/// `b*BLOCK ..` for every row contiguously (`[k][BLOCK]`, zero-padded past `cols`), so the
/// kernels read each panel front to back.
#[derive(Debug, Clone, PartialEq)]
struct Panels {
    k: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Panels {
    fn pack(w: &[f32], k: usize, cols: usize) -> Self {
        let blocks = cols.div_ceil(BLOCK);
        let mut data = vec![0.0f32; blocks * k * BLOCK];
        for b in 0..blocks {
            for kk in 0..k {
                for jj in 0..BLOCK.min(cols - b * BLOCK) {
                    data[(b * k + kk) * BLOCK + jj] = w[kk * cols + b * BLOCK + jj];
                }
            }
        }
        Self { k, cols, data }
    }

    /// `out[j] += sum_k input[k] * w[k][j]` (`out.len() == cols`, `input.len() == k`), a
    /// block of accumulators kept in registers over all rows of each panel.
    fn matvec_add(&self, out: &mut [f32], input: &[f32]) {
        for (b, panel) in self.data.chunks_exact(self.k * BLOCK).enumerate() {
            let mut acc = [0.0f32; BLOCK];
            for (&x, row) in input.iter().zip(panel.chunks_exact(BLOCK)) {
                axpy_block(&mut acc, x, row);
            }
            let j0 = b * BLOCK;
            let n = BLOCK.min(self.cols - j0);
            for (o, a) in out[j0..j0 + n].iter_mut().zip(&acc) {
                *o += a;
            }
        }
    }
}

/// `exp(x)` in `f32` without a library call, so loops over it vectorise: Cephes' `expf`
/// (range reduction by `ln 2`, degree-5 polynomial; relative error under 1e-6, tested) with `x`
/// clamped to `[-87.3, 88.3]` (no overflow, no denormals).
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to the nearest integer (round-to-nearest-even FPU mode).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from its exponent bits (n in -126..=127 after the clamp).
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn sigmoid32(x: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-x))
}

#[inline(always)]
fn tanh32(x: f32) -> f32 {
    1.0 - 2.0 / (fast_exp(2.0 * x) + 1.0)
}

/// `out[t] = bias + input[t] W` for every row `t` of `input` (`rows x k`, row-major): the
/// input projection of a whole window in one pass, each panel of `W` (16 KiB at 128 inputs)
/// staying in L1 while every row is multiplied by it.
fn project_rows(out: &mut [f32], input: &[f32], w: &Panels, bias: &[f32]) {
    let cols = bias.len();
    for row_out in out.chunks_exact_mut(cols) {
        row_out.copy_from_slice(bias);
    }
    for (b, panel) in w.data.chunks_exact(w.k * BLOCK).enumerate() {
        let j0 = b * BLOCK;
        let n = BLOCK.min(cols - j0);
        for (row_out, row_in) in out.chunks_exact_mut(cols).zip(input.chunks_exact(w.k)) {
            let mut acc = [0.0f32; BLOCK];
            for (&x, row) in row_in.iter().zip(panel.chunks_exact(BLOCK)) {
                axpy_block(&mut acc, x, row);
            }
            for (o, a) in row_out[j0..j0 + n].iter_mut().zip(&acc) {
                *o += a;
            }
        }
    }
}

impl Weights {
    /// The network's output for one normalised window (same equations as
    /// [`LstmNet::forward`] without dropout, in `f32`; `exp` approximated to about 2e-7).
    ///
    /// Per layer, the input projection of the whole window is one matrix product (its weights
    /// read once); then each step adds `h W_h`, whose 256 KiB (at 128 units) stay in the L2
    /// cache across the window. Reading every weight at every step instead made one forecast
    /// memory-bound (about 80 MB from L3).
    pub fn forward(&self, window: &[f32]) -> f32 {
        let mut seq: Vec<f32> = window.to_vec();
        let mut d_in = 1;
        let mut hidden = Vec::new();
        for (li, layer) in self.layers.iter().enumerate() {
            debug_assert_eq!(layer.d_in, d_in);
            let h4 = layer.bias.len();
            let hd = h4 / 4;
            let steps = seq.len() / d_in;
            let top = li + 1 == self.layers.len();
            let mut projected = vec![0.0f32; steps * h4];
            project_rows(&mut projected, &seq, &layer.w_x, &layer.bias);
            hidden = vec![0.0f32; hd];
            let mut cell = vec![0.0f32; hd];
            let mut next = if top {
                Vec::new()
            } else {
                Vec::with_capacity(steps * hd)
            };
            for gates in projected.chunks_exact_mut(h4) {
                layer.w_h.matvec_add(gates, &hidden);
                let (ifo, g) = gates.split_at(3 * hd);
                let (i, fo) = ifo.split_at(hd);
                let (f, o) = fo.split_at(hd);
                for j in 0..hd {
                    cell[j] = sigmoid32(f[j]) * cell[j] + sigmoid32(i[j]) * tanh32(g[j]);
                    hidden[j] = sigmoid32(o[j]) * tanh32(cell[j]);
                }
                if !top {
                    next.extend_from_slice(&hidden);
                }
            }
            if !top {
                seq = next;
                d_in = hd;
            }
        }
        self.head_b
            + hidden
                .iter()
                .zip(&self.head_w)
                .map(|(h, w)| h * w)
                .sum::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_forward_matches_burn_forward() {
        // 4H = 32 (one register block), 20 (a padded partial block), 160 (five blocks).
        for hidden in [8, 5, 40] {
            let device = Device::flex();
            let model = crate::nn::seeded_init(&device, 7, || {
                let m = LstmNetConfig::new(2, hidden).init(&device);
                materialize(&m);
                m
            });
            let weights = model.weights();
            let windows: Vec<Vec<f32>> = (0..3)
                .map(|b| {
                    (0..12)
                        .map(|t| ((t * 7 + b * 3) % 11) as f32 / 5.0 - 1.0)
                        .collect()
                })
                .collect();
            let flat: Vec<f32> = windows.iter().flatten().copied().collect();
            let x = Tensor::<3>::from_data(TensorData::new(flat, [3, 12, 1]), &device);
            let out: Vec<f32> = model
                .forward(x, None)
                .into_data()
                .convert::<f32>()
                .try_into_vec()
                .unwrap();
            for (w, burn_out) in windows.iter().zip(&out) {
                let plain = weights.forward(w);
                assert!(
                    (plain - burn_out).abs() < 1e-5,
                    "hidden {hidden}: {plain} vs {burn_out}"
                );
            }
        }
    }

    #[test]
    fn forget_gate_bias_starts_at_one() {
        let device = Device::flex();
        let model = LstmNetConfig::new(1, 8).init(&device);
        let bias: Vec<f32> = model.layers[0]
            .input
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        // Gates ordered input, forget, output, cell: 8 units each.
        assert_eq!((bias[0], bias[8], bias[16], bias[24]), (0.0, 1.0, 0.0, 0.0));
    }

    #[test]
    fn fast_exp_is_accurate() {
        for i in -800..=800 {
            let x = i as f32 / 10.0;
            let (fast, exact) = (fast_exp(x), x.exp());
            assert!(
                ((fast - exact) / exact).abs() < 1e-6,
                "exp({x}): {fast} vs {exact}"
            );
        }
        assert!(tanh32(0.0).abs() < 1e-7 && (tanh32(20.0) - 1.0).abs() < 1e-7);
        assert!(sigmoid32(-100.0) >= 0.0 && sigmoid32(100.0) <= 1.0);
    }

    #[test]
    fn same_seed_same_weights_even_with_other_threads_seeding() {
        let device = Device::flex();
        let build = |seed| {
            crate::nn::seeded_init(&device, seed, || {
                let m = LstmNetConfig::new(1, 4).init(&device);
                materialize(&m);
                m
            })
            .weights()
        };
        let a = build(3);
        // Another network initialised in between (on this or another thread) must not matter.
        let other = std::thread::spawn(move || build_on_thread(11));
        let b = build(3);
        other.join().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, build(4));
    }

    fn build_on_thread(seed: u64) -> Weights {
        let device = Device::flex();
        crate::nn::seeded_init(&device, seed, || {
            let m = LstmNetConfig::new(1, 4).init(&device);
            materialize(&m);
            m
        })
        .weights()
    }

    #[test]
    fn dropout_mask_keeps_expectation() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mask = dropout_mask(&mut rng, 10_000, 0.2);
        let zeros = mask.iter().filter(|&&m| m == 0.0).count();
        // Binomial(10000, 0.2): mean 2000, sd 40.
        assert!((1850..2150).contains(&zeros), "{zeros}");
        assert!(mask.iter().all(|&m| m == 0.0 || m == 1.25));
    }
}
