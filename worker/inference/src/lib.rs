//! xnai's inference engine. Always available (pure Rust, no llama.cpp): [`gguf`] reads a GGUF
//! header and [`plan`] sizes a model's memory, which is all `xnai plan` and the head need. With
//! the default feature `llama`, [`llama`] runs models through llama-cpp-2 behind the
//! [`InferenceEngine`] trait; feature `fake` adds an in-memory [`fake::FakeEngine`] for tests of
//! the layers above.
//!
//! Build (feature `llama`): llama-cpp-2's CMake compiles llama.cpp into static libraries
//! linked into the binary. No `-C target-cpu=native`: ggml's CPU code is built with
//! AVX/AVX2/FMA/F16C/BMI2, so the binary needs an x86-64-v3 CPU. OpenMP is linked statically
//! (`static-openmp`; GNU OpenMP throttles its spinning when threads outnumber cores, which
//! slots sharing cores need), so at run time the binary needs only glibc (libc, libm),
//! libstdc++ and libgcc_s. llama.cpp is compiled `RelWithDebInfo` (-O2 -g) whenever the cargo
//! profile has debug info and `Release` (-O3) otherwise; `LLAMA_LIB_PROFILE=Release` forces -O3.
//! `dynamic-backends` (runtime CPU dispatch) is not used: it builds 14 x86 variants of ggml's
//! CPU backend as shared libraries that must ship beside the binary and be found at run time.

pub mod bench;
pub mod engine;
pub mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod gguf;
#[cfg(feature = "llama")]
pub mod llama;
pub mod plan;
pub mod queue;
pub mod stop;

pub use engine::{
    EngineConfig, EngineFuture, EngineInfo, EngineLoader, FinishReason, GenerateEvent,
    GenerateParams, GenerateStats, GenerateStream, InferenceEngine,
};
pub use error::{InferenceError, Result};
pub use gguf::{GgufHeader, ModelFacts};
pub use plan::{MemoryPlan, PlanParams, plan};
