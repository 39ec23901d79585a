//! Kubernetes resource quantities (`250m`, `0.5`, `64Mi`, `1G`, `1e3`) as numbers: the
//! serialization format of `k8s.io/apimachinery/pkg/api/resource.Quantity` (binary suffixes
//! `Ki`..`Ei`, decimal suffixes `n`, `u`, `m`, `k`, `M`..`E`, or a decimal exponent).

/// The quantity's value in base units (cores, bytes), or `None` if `s` is not a quantity.
pub fn parse(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    let v = value * factor;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// A CPU quantity in millicores, rounded up as Kubernetes does (`MilliValue`).
pub fn cpu_millicores(s: &str) -> Option<u64> {
    parse(s).map(|v| (v * 1000.0 - 1e-9).ceil().max(0.0) as u64)
}

/// A memory quantity in bytes, rounded up.
pub fn memory_bytes(s: &str) -> Option<u64> {
    parse(s).map(|v| (v - 1e-9).ceil().max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_docs_examples() {
        assert_eq!(cpu_millicores("250m"), Some(250));
        assert_eq!(cpu_millicores("0.5"), Some(500));
        assert_eq!(cpu_millicores("2"), Some(2000));
        assert_eq!(cpu_millicores("100u"), Some(1)); // rounded up, as MilliValue does
        assert_eq!(memory_bytes("64Mi"), Some(67_108_864));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("128974848"), Some(128_974_848));
        assert_eq!(memory_bytes("129e6"), Some(129_000_000));
        assert_eq!(memory_bytes("1.5Ki"), Some(1536));
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for bad in ["", "m", "12x", "1Mb", "-1", "1e", "abc"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
