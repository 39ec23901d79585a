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
//! Dropout masks come from the caller's seeded RNG, not from burn's global one, so training
//! stays reproducible when several networks train on parallel threads (STYLE.md lesson 4).

use burn::module::{Module, ModuleVisitor, Param};
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

/// Forces burn's lazily created parameters to be drawn now, so that a network built under
/// [`crate::nn::seeded_init`] takes its random values while the lock is held.
pub fn materialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// Inverted dropout mask of `len` values: 0 with probability `p`, else `1/(1-p)`.
fn dropout_mask(rng: &mut ChaCha8Rng, len: usize, p: f64) -> Vec<f32> {
    let keep = (1.0 / (1.0 - p)) as f32;
    (0..len)
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect()
}

impl FusedLstm {
    /// Runs the layer over `x: [batch, window, d_in]`; returns every step's hidden state
    /// `[batch, window, H]` when `all_steps`, else the last one `[batch, 1, H]`.
    fn forward(&self, x: Tensor<3>, all_steps: bool) -> Tensor<3> {
        let [batch, window, _] = x.dims();
        let h4 = self.recurrent.weight.dims()[1];
        let hd = h4 / 4;
        let device = x.device();
        // [batch, window, 4H] in one product.
        let projected = self.input.forward(x);
        let mut hidden = Tensor::<2>::zeros([batch, hd], &device);
        let mut cell = Tensor::<2>::zeros([batch, hd], &device);
        let mut outputs = Vec::with_capacity(if all_steps { window } else { 1 });
        for t in 0..window {
            let gates = projected
                .clone()
                .slice([0..batch, t..t + 1, 0..h4])
                .reshape([batch, h4])
                + self.recurrent.forward(hidden);
            let ifo = sigmoid(gates.clone().slice([0..batch, 0..3 * hd]));
            let candidate = gates.slice([0..batch, 3 * hd..h4]).tanh();
            let i = ifo.clone().slice([0..batch, 0..hd]);
            let f = ifo.clone().slice([0..batch, hd..2 * hd]);
            let o = ifo.slice([0..batch, 2 * hd..3 * hd]);
            cell = f * cell + i * candidate;
            hidden = o * cell.clone().tanh();
            if all_steps {
                outputs.push(hidden.clone().unsqueeze_dim::<3>(1));
            }
        }
        if all_steps {
            Tensor::cat(outputs, 1)
        } else {
            hidden.unsqueeze_dim(1)
        }
    }
}

impl LstmNet {
    /// Forecasts from `x: [batch, window, 1]` (normalised series) to `[batch, 1]` (normalised
    /// target). With `dropout = Some((rng, p))` (training), each layer's output sequence but
    /// the top one's is multiplied by an inverted-dropout mask drawn from `rng`.
    pub fn forward(&self, x: Tensor<3>, mut dropout: Option<(&mut ChaCha8Rng, f64)>) -> Tensor<2> {
        let last = self.layers.len().saturating_sub(1);
        let mut seq = x;
        for (i, layer) in self.layers.iter().enumerate() {
            seq = layer.forward(seq, i < last);
            if i < last {
                if let Some((rng, p)) = dropout.as_mut() {
                    if *p > 0.0 {
                        let dims = seq.dims();
                        let mask = dropout_mask(rng, dims.iter().product(), *p);
                        let mask = Tensor::from_data(TensorData::new(mask, dims), &seq.device());
                        seq = seq * mask;
                    }
                }
            }
        }
        let [batch, _, hd] = seq.dims();
        self.head.forward(seq.reshape([batch, hd]))
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
                let d_in = w_x.dims()[0];
                LayerWeights {
                    d_in,
                    w_x: values(w_x),
                    bias: l
                        .input
                        .bias
                        .as_ref()
                        .map(|b| values(b.val().unsqueeze_dim(0)))
                        .unwrap_or_default(),
                    w_h: values(l.recurrent.weight.val()),
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
    /// `[d_in, 4H]`.
    w_x: Vec<f32>,
    /// `[4H]`.
    bias: Vec<f32>,
    /// `[H, 4H]`.
    w_h: Vec<f32>,
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

/// `out += x * w` for a row `w` (autovectorised).
#[inline]
fn axpy(out: &mut [f32], x: f32, w: &[f32]) {
    for (o, &wi) in out.iter_mut().zip(w) {
        *o += x * wi;
    }
}

fn sigmoid32(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Weights {
    /// The network's output for one normalised window (same equations as
    /// [`LstmNet::forward`] without dropout, in `f32`).
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
            hidden = vec![0.0f32; hd];
            let mut cell = vec![0.0f32; hd];
            let mut gates = vec![0.0f32; h4];
            let mut next = if top {
                Vec::new()
            } else {
                Vec::with_capacity(steps * hd)
            };
            for t in 0..steps {
                gates.copy_from_slice(&layer.bias);
                for (k, &x) in seq[t * d_in..(t + 1) * d_in].iter().enumerate() {
                    axpy(&mut gates, x, &layer.w_x[k * h4..(k + 1) * h4]);
                }
                for (k, &hk) in hidden.iter().enumerate() {
                    axpy(&mut gates, hk, &layer.w_h[k * h4..(k + 1) * h4]);
                }
                for j in 0..hd {
                    let i = sigmoid32(gates[j]);
                    let f = sigmoid32(gates[hd + j]);
                    let o = sigmoid32(gates[2 * hd + j]);
                    let g = gates[3 * hd + j].tanh();
                    cell[j] = f * cell[j] + i * g;
                    hidden[j] = o * cell[j].tanh();
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
        let device = Device::flex();
        let model = crate::nn::seeded_init(&device, 7, || {
            let m = LstmNetConfig::new(2, 8).init(&device);
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
            assert!((plain - burn_out).abs() < 1e-5, "{plain} vs {burn_out}");
        }
        // The forget-gate bias starts at 1, the others at 0.
        let b = &weights.layers[0].bias;
        assert_eq!((b[0], b[8], b[16], b[24]), (0.0, 1.0, 0.0, 0.0));
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
