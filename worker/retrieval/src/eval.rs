//! Retrieval quality and latency measures the benchmark reports: recall@k of the approximate
//! index against exact search, mean reciprocal rank of the relevant document, percentiles.

/// Fraction of `exact` found in `approx` (recall@k with k = `exact.len()`); 1.0 when `exact`
/// is empty.
pub fn recall<T: PartialEq>(approx: &[T], exact: &[T]) -> f64 {
    if exact.is_empty() {
        return 1.0;
    }
    exact.iter().filter(|e| approx.contains(e)).count() as f64 / exact.len() as f64
}

/// Reciprocal rank of `relevant` among the first `k` distinct documents of `ranked` (chunks
/// of one document count once, at their best rank); 0 if it is not there.
pub fn reciprocal_rank(ranked: &[String], relevant: &str, k: usize) -> f64 {
    let mut seen: Vec<&str> = Vec::new();
    for doc in ranked {
        if seen.contains(&doc.as_str()) {
            continue;
        }
        seen.push(doc);
        if seen.len() > k {
            break;
        }
        if doc == relevant {
            return 1.0 / seen.len() as f64;
        }
    }
    0.0
}

/// The `p`-th percentile (0..=100, nearest rank) of `values` (sorted here); 0 when empty.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures() {
        assert_eq!(recall(&[1, 2, 3], &[3, 4]), 0.5);
        let ranked: Vec<String> = ["a", "a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(reciprocal_rank(&ranked, "b", 10), 0.5);
        assert_eq!(reciprocal_rank(&ranked, "c", 2), 0.0);
        assert_eq!(reciprocal_rank(&ranked, "z", 10), 0.0);
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut [], 50.0), 0.0);
    }
}
