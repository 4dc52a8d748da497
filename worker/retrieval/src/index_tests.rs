//! Unit tests of [`RetrievalIndex`]: add, replace, delete, the three search modes, compaction.

use super::*;

fn doc(id: &str, texts_and_vectors: &[(&str, [f32; 3])]) -> EmbeddedDoc {
    EmbeddedDoc {
        id: id.into(),
        metadata: [("source".to_string(), format!("{id}.txt"))].into(),
        chunks: texts_and_vectors
            .iter()
            .map(|(t, v)| EmbeddedChunk {
                text: t.to_string(),
                vector: v.to_vec(),
            })
            .collect(),
    }
}

fn sample() -> RetrievalIndex {
    let mut index = RetrievalIndex::new(IndexParams::default()).unwrap();
    index
        .apply(&Mutation::Add(vec![
            doc("fox", &[("the quick brown fox jumps", [1.0, 0.0, 0.0])]),
            doc(
                "raft",
                &[("raft elects a leader by majority vote", [0.0, 1.0, 0.0])],
            ),
            doc("tmpfs", &[("tmpfs keeps files in memory", [0.0, 0.0, 1.0])]),
        ]))
        .unwrap();
    index
}

fn ids(hits: &[ChunkHit]) -> Vec<&str> {
    hits.iter().map(|h| h.doc_id.as_str()).collect()
}

#[test]
fn every_mode_finds_the_right_document() {
    let mut index = sample();
    for compacted in [false, true] {
        if compacted {
            index.compact(0);
        }
        let q = [0.1, 0.9, 0.0];
        let v = index.search("", Some(&q), 1, SearchMode::Vector).unwrap();
        assert_eq!(ids(&v), ["raft"]);
        let b = index
            .search("who is the leader?", None, 2, SearchMode::Bm25)
            .unwrap();
        assert_eq!(ids(&b), ["raft"]);
        let h = index
            .search("leader", Some(&q), 3, SearchMode::Hybrid)
            .unwrap();
        assert_eq!(h[0].doc_id, "raft");
        assert_eq!(h[0].metadata["source"], "raft.txt");
        assert!(index.search("x", None, 1, SearchMode::Vector).is_err());
    }
}

#[test]
fn replace_and_delete() {
    let mut index = sample();
    index
        .apply(&Mutation::Add(vec![doc(
            "fox",
            &[("a sleepy dog", [0.0, 1.0, 0.0])],
        )]))
        .unwrap();
    assert_eq!(index.stats().documents, 3);
    assert_eq!(index.stats().deleted_chunks, 1);
    assert!(
        index
            .search("fox", None, 3, SearchMode::Bm25)
            .unwrap()
            .is_empty()
    );
    index
        .apply(&Mutation::Delete(vec!["raft".into(), "nope".into()]))
        .unwrap();
    let q = [0.0, 1.0, 0.0];
    let v = index.search("", Some(&q), 3, SearchMode::Vector).unwrap();
    assert_eq!(ids(&v)[0], "fox");
    assert!(!ids(&v).contains(&"raft"));
    index.compact(0);
    let s = index.stats();
    assert_eq!(
        (s.documents, s.chunks, s.graph_chunks, s.tail_chunks),
        (2, 2, 2, 0)
    );
}

#[test]
fn wrong_dimensions_change_nothing() {
    let mut index = sample();
    let bad = EmbeddedDoc {
        id: "bad".into(),
        metadata: Default::default(),
        chunks: vec![EmbeddedChunk {
            text: "x".into(),
            vector: vec![1.0, 2.0],
        }],
    };
    assert!(matches!(
        index.apply(&Mutation::Add(vec![bad])),
        Err(RetrievalError::Dimension { want: 3, got: 2 })
    ));
    assert_eq!(index.stats().documents, 3);
    assert!("cosine".parse::<SearchMode>().is_err());
    assert_eq!("hybrid".parse::<SearchMode>().unwrap(), SearchMode::Hybrid);
}
