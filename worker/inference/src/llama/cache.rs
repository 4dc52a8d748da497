//! `ModelCache`: the worker's resident llama.cpp models. Each GGUF file is loaded (memory
//! mapped) once and shared as `Arc<LlamaModel>` among every engine that uses it. Resident
//! models live under a byte budget: loading beyond it first unloads models no engine uses
//! (strong count 1), least recently used first, then fails with `BudgetExceeded`.
//!
//! Thread-safety: `Clone + Send + Sync`; one mutex serialises loads, so two engines asking for
//! the same file at once load it once. Loading blocks: call it off the async runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use serde::Serialize;

use super::{LlamaEngine, backend};
use crate::engine::{EngineConfig, EngineFuture, EngineLoader, InferenceEngine};
use crate::error::{InferenceError, Result};

/// Shared, budgeted cache of loaded models. See the module doc.
#[derive(Clone)]
pub struct ModelCache {
    budget_bytes: u64,
    state: Arc<Mutex<CacheState>>,
}

#[derive(Default)]
struct CacheState {
    entries: Vec<Entry>,
    clock: u64,
}

struct Entry {
    path: PathBuf,
    model: Arc<LlamaModel>,
    bytes: u64,
    last_used: u64,
}

/// A resident model, as [`ModelCache::resident`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResidentModel {
    /// Canonical path of the GGUF file.
    pub path: PathBuf,
    /// Bytes it occupies (the file size: llama.cpp maps the whole file).
    pub bytes: u64,
    /// Whether an engine still uses it (it cannot be unloaded).
    pub in_use: bool,
}

impl ModelCache {
    /// A cache that keeps at most `budget_bytes` of models resident.
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            budget_bytes,
            state: Arc::new(Mutex::new(CacheState::default())),
        }
    }

    /// The budget.
    pub fn budget_bytes(&self) -> u64 {
        self.budget_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock leaves the entry list consistent (pushes are atomic).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The model at `path`, loading it if it is not resident. Blocks while loading.
    pub fn get_or_load(&self, path: &Path) -> Result<Arc<LlamaModel>> {
        let path = std::fs::canonicalize(path).map_err(|e| InferenceError::io(path, e))?;
        let bytes = std::fs::metadata(&path)
            .map_err(|e| InferenceError::io(&path, e))?
            .len();
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        if let Some(entry) = state.entries.iter_mut().find(|e| e.path == path) {
            entry.last_used = now;
            return Ok(Arc::clone(&entry.model));
        }
        Self::make_room(&mut state, &path, bytes, self.budget_bytes)?;
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default())
            .map_err(|e| InferenceError::Load(format!("{}: {e}", path.display())))?;
        let model = Arc::new(model);
        tracing::info!(path = %path.display(), bytes, "model loaded");
        state.entries.push(Entry {
            path,
            model: Arc::clone(&model),
            bytes,
            last_used: now,
        });
        Ok(model)
    }

    /// Unloads unused models, least recently used first, until `bytes` more fit the budget.
    fn make_room(state: &mut CacheState, path: &Path, bytes: u64, budget: u64) -> Result<()> {
        let resident = |s: &CacheState| s.entries.iter().map(|e| e.bytes).sum::<u64>();
        while resident(state).saturating_add(bytes) > budget {
            let victim = state
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| Arc::strong_count(&e.model) == 1)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i);
            let Some(i) = victim else {
                return Err(InferenceError::BudgetExceeded {
                    path: path.to_path_buf(),
                    needed_bytes: bytes,
                    budget_bytes: budget,
                    in_use_bytes: resident(state),
                });
            };
            let gone = state.entries.swap_remove(i);
            tracing::info!(path = %gone.path.display(), bytes = gone.bytes, "model unloaded (budget)");
        }
        Ok(())
    }

    /// Unloads every model no engine uses; returns how many.
    pub fn unload_unused(&self) -> usize {
        let mut state = self.lock();
        let before = state.entries.len();
        state.entries.retain(|e| Arc::strong_count(&e.model) > 1);
        before - state.entries.len()
    }

    /// The resident models.
    pub fn resident(&self) -> Vec<ResidentModel> {
        self.lock()
            .entries
            .iter()
            .map(|e| ResidentModel {
                path: e.path.clone(),
                bytes: e.bytes,
                in_use: Arc::strong_count(&e.model) > 1,
            })
            .collect()
    }
}

impl EngineLoader for ModelCache {
    fn load(&self, config: EngineConfig) -> EngineFuture<'_, Arc<dyn InferenceEngine>> {
        let cache = self.clone();
        Box::pin(async move {
            let engine = tokio::task::spawn_blocking(move || LlamaEngine::load(&cache, config))
                .await
                .map_err(|e| InferenceError::Load(format!("load task failed: {e}")))??;
            Ok(Arc::new(engine) as Arc<dyn InferenceEngine>)
        })
    }
}
