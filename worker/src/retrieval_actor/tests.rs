//! Tests of the retrieval actor against a fake cluster: in-memory objects and a bag-of-words
//! embedder. Covers the methods, reloading after a restart without re-embedding, and a failed
//! store leaving memory equal to what is stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::future::BoxFuture;
use xnai_proto::ids::ObjectId;

use super::cluster::{CallResult, EmbeddingSource};
use super::*;

#[derive(Default)]
struct FakeCluster {
    objects: Mutex<HashMap<ObjectId, Bytes>>,
    embedded: AtomicU64,
    fail_store: AtomicBool,
}

/// Hashes words into 64 buckets: texts sharing words are close.
fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 64];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = w
            .to_lowercase()
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        v[(h % 64) as usize] += 1.0;
    }
    v[63] += 0.01;
    v
}

impl Cluster for FakeCluster {
    fn embed<'a>(
        &'a self,
        _source: &'a EmbeddingSource,
        texts: Vec<String>,
    ) -> BoxFuture<'a, CallResult<Vec<Vec<f32>>>> {
        self.embedded
            .fetch_add(texts.len() as u64, Ordering::SeqCst);
        Box::pin(async move { Ok(texts.iter().map(|t| bag_of_words(t)).collect()) })
    }
    fn exists(&self, id: ObjectId) -> BoxFuture<'_, CallResult<bool>> {
        let found = self.objects.lock().unwrap().contains_key(&id);
        Box::pin(async move { Ok(found) })
    }
    fn fetch(&self, id: ObjectId) -> BoxFuture<'_, CallResult<Bytes>> {
        let got = self.objects.lock().unwrap().get(&id).cloned();
        Box::pin(async move { got.ok_or_else(|| "missing".to_string()) })
    }
    fn store(&self, id: ObjectId, data: Bytes, _replicas: usize) -> BoxFuture<'_, CallResult<()>> {
        let fail = self.fail_store.load(Ordering::SeqCst);
        if !fail {
            self.objects.lock().unwrap().insert(id, data);
        }
        Box::pin(async move {
            if fail {
                Err("arena full".into())
            } else {
                Ok(())
            }
        })
    }
    fn free(&self, ids: Vec<ObjectId>) -> BoxFuture<'_, CallResult<()>> {
        let mut objects = self.objects.lock().unwrap();
        ids.iter().for_each(|id| {
            objects.remove(id);
        });
        Box::pin(async { Ok(()) })
    }
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

async fn call(
    host: &RetrievalActors,
    id: ActorId,
    method: &str,
    args: &[&str],
) -> serde_json::Value {
    let out = host
        .call(id, method, args.iter().map(|a| b(a)).collect())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    serde_json::from_slice(&out).unwrap()
}

const DOCS: [(&str, &str); 4] = [
    (
        "raft",
        "Raft elects a leader and replicates the log to a majority of servers.",
    ),
    (
        "tmpfs",
        "The arena keeps objects in tmpfs memory and evicts the least recently used.",
    ),
    (
        "llama",
        "Llamas are camelids from South America kept for their wool.",
    ),
    (
        "hnsw",
        "Hierarchical navigable small world graphs answer nearest neighbour queries.",
    ),
];

async fn add_all(host: &RetrievalActors, id: ActorId) {
    // One change per call: six mutations, snapshots at 1, 2 and 4, then one log (5).
    for (doc, text) in DOCS {
        let body = serde_json::json!([{ "id": doc, "text": text, "metadata": {"source": format!("{doc}.md")} }]);
        call(host, id, "add", &[&body.to_string()]).await;
    }
    call(host, id, "delete", &["llama"]).await;
    let extra = r#"[{"id":"gc","text":"Garbage collection frees unreferenced objects."}]"#;
    call(host, id, "add", &[extra]).await;
}

#[tokio::test]
async fn methods_and_reload_without_reembedding() {
    let cluster = Arc::new(FakeCluster::default());
    let host = RetrievalActors::new(cluster.clone());
    let id = ActorId::random();
    host.start(id, &[b("embedder=emb"), b("chunk=8"), b("overlap=2")])
        .await
        .unwrap();
    add_all(&host, id).await;
    let stats = call(&host, id, "stats", &[]).await;
    assert_eq!(stats["documents"], 4);
    assert_eq!(stats["segments"], 6);
    let mut answers = Vec::new();
    for mode in ["vector", "bm25", "hybrid"] {
        let hits = call(
            &host,
            id,
            "search",
            &["leader", "majority", &format!("mode={mode}"), "k=3"],
        )
        .await;
        assert_eq!(hits[0]["doc_id"], "raft", "{mode}: {hits}");
        assert_eq!(hits[0]["metadata"]["source"], "raft.md");
        assert!(
            hits.as_array()
                .unwrap()
                .iter()
                .all(|h| h["doc_id"] != "llama")
        );
        answers.push(hits);
    }

    // A new incarnation (another worker): same id, same constructor, nothing re-embedded.
    let embedded_before = cluster.embedded.load(Ordering::SeqCst);
    let host2 = RetrievalActors::new(cluster.clone());
    host2
        .start(id, &[b("embedder=emb"), b("chunk=8"), b("overlap=2")])
        .await
        .unwrap();
    assert_eq!(cluster.embedded.load(Ordering::SeqCst), embedded_before);
    let stats = call(&host2, id, "stats", &[]).await;
    assert_eq!(
        (
            stats["loaded_snapshot"].clone(),
            stats["loaded_logs"].clone()
        ),
        (4.into(), 1.into())
    );
    assert_eq!(stats["texts_embedded"], 0);
    for (mode, before) in ["vector", "bm25", "hybrid"].iter().zip(&answers) {
        let hits = call(
            &host2,
            id,
            "search",
            &["leader", "majority", &format!("mode={mode}"), "k=3"],
        )
        .await;
        assert_eq!(&hits, before, "{mode}");
    }
    // Superseded segments were freed: only snapshot 4 and log 5 remain.
    assert_eq!(cluster.objects.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn failed_store_leaves_memory_as_stored() {
    let cluster = Arc::new(FakeCluster::default());
    let host = RetrievalActors::new(cluster.clone());
    let id = ActorId::random();
    host.start(id, &[b("model=/m.gguf")]).await.unwrap();
    call(&host, id, "add", &[r#"[{"id":"a","text":"alpha"}]"#]).await;
    cluster.fail_store.store(true, Ordering::SeqCst);
    let err = host
        .call(id, "add", vec![b(r#"[{"id":"b","text":"beta"}]"#)])
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("arena full"), "{err}");
    let stats = call(&host, id, "stats", &[]).await;
    assert_eq!(
        (stats["documents"].clone(), stats["segments"].clone()),
        (1.into(), 1.into())
    );
}

#[tokio::test]
async fn bad_calls_are_application_errors() {
    let host = RetrievalActors::new(Arc::new(FakeCluster::default()));
    let id = ActorId::random();
    assert!(
        host.start(id, &[b("chunk=5")])
            .await
            .unwrap_err()
            .contains("embedder")
    );
    host.start(id, &[b("embedder=e")]).await.unwrap();
    let r = host
        .call(id, "frobnicate", vec![])
        .await
        .unwrap()
        .unwrap_err();
    assert!(r.contains("methods"), "{r}");
    assert!(host.call(id, "search", vec![]).await.unwrap().is_err());
    assert!(host.call(ActorId::random(), "stats", vec![]).await.is_err());
}
