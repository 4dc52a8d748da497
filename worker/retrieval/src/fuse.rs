//! Reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009): each ranked list gives an item
//! `1 / (k + rank)`, summed over the lists. Robust to the incomparable score scales of cosine
//! similarity and BM25, which is why hybrid search uses it instead of mixing raw scores.

use std::collections::HashMap;

/// The usual constant from the paper: dampens the weight of the very first ranks.
pub const RRF_K: f64 = 60.0;

/// Fuses ranked lists of item ids (best first) into one list of (id, fused score), best first;
/// ties break on the smaller id, so the result is deterministic.
pub fn reciprocal_rank_fusion(lists: &[Vec<u32>], k: f64) -> Vec<(u32, f64)> {
    let mut scores: HashMap<u32, f64> = HashMap::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            *scores.entry(*id).or_default() += 1.0 / (k + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(u32, f64)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_in_both_lists_win() {
        let fused = reciprocal_rank_fusion(&[vec![1, 2, 3], vec![3, 4, 1]], RRF_K);
        let order: Vec<u32> = fused.iter().map(|(id, _)| *id).collect();
        assert_eq!(order, vec![1, 3, 2, 4]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-12);
    }

    #[test]
    fn ties_break_on_id() {
        let fused = reciprocal_rank_fusion(&[vec![9], vec![2]], RRF_K);
        assert_eq!(fused.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 9]);
    }
}
