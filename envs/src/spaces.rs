//! Spaces: [`Discrete`] (actions `0..n`) and [`BoxSpace`] (real vectors with bounds), as in
//! Gymnasium's `spaces.Discrete` and `spaces.Box`.

use rand::Rng;

/// A set of values that observations or actions are drawn from.
pub trait Space<T> {
    /// Whether `value` is a member of the space.
    fn contains(&self, value: &T) -> bool;
    /// A uniformly random member, drawn from `rng` (a seeded stream of the caller's).
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> T;
}

/// The integers `0..n` (Gymnasium `Discrete(n)` with `start = 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discrete {
    /// Number of elements, at least 1.
    pub n: usize,
}

impl Discrete {
    /// `Discrete(n)`.
    ///
    /// # Panics
    /// If `n == 0` (an empty action space is a programming error).
    pub fn new(n: usize) -> Self {
        assert!(n > 0, "Discrete space needs at least one element");
        Self { n }
    }
}

impl Space<usize> for Discrete {
    fn contains(&self, value: &usize) -> bool {
        *value < self.n
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        rng.random_range(0..self.n)
    }
}

/// A box `[low_i, high_i]` in `R^d` (Gymnasium `Box`), elements `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxSpace {
    /// Lower bound per dimension.
    pub low: Vec<f32>,
    /// Upper bound per dimension.
    pub high: Vec<f32>,
}

impl BoxSpace {
    /// A box with the given bounds.
    ///
    /// # Panics
    /// If the bound vectors differ in length or some `low > high`.
    pub fn new(low: Vec<f32>, high: Vec<f32>) -> Self {
        assert_eq!(low.len(), high.len(), "BoxSpace bounds differ in length");
        assert!(
            low.iter().zip(&high).all(|(l, h)| l <= h),
            "BoxSpace needs low <= high"
        );
        Self { low, high }
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.low.len()
    }
}

impl Space<Vec<f32>> for BoxSpace {
    fn contains(&self, value: &Vec<f32>) -> bool {
        value.len() == self.dim()
            && value
                .iter()
                .zip(self.low.iter().zip(&self.high))
                .all(|(v, (l, h))| v.is_finite() && *v >= *l && *v <= *h)
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f32> {
        self.low
            .iter()
            .zip(&self.high)
            .map(|(l, h)| rng.random_range(*l..=*h))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn membership_and_sampling() {
        let d = Discrete::new(21);
        assert!(d.contains(&20) && !d.contains(&21));
        let b = BoxSpace::new(vec![0.0, -1.0], vec![1.0, 1.0]);
        assert!(b.contains(&vec![0.5, -1.0]));
        assert!(!b.contains(&vec![1.5, 0.0]));
        assert!(!b.contains(&vec![f32::NAN, 0.0]));
        assert!(!b.contains(&vec![0.5]));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100 {
            assert!(d.contains(&d.sample(&mut rng)));
            assert!(b.contains(&b.sample(&mut rng)));
        }
    }
}
