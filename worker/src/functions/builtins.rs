//! The built-in task functions every worker offers, exactly as the contract defines them:
//! `echo ARG...`, `sleep MS`, `fill BYTES SEED` (splitmix64 bytes) and `digest REF` (hex SHA-256);
//! the data `fill` and `digest` compute is defined once in `xnai_sdk::builtins`.
//! Argument errors are application errors whose text names the function and the bad value.
//! `fill` is bounded by a memory budget shared by every fill running on the worker: one larger
//! than the whole budget is refused, others wait for their share.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use xnai_proto::units::format_size;
use xnai_sdk::builtins::{fill_bytes, sha256_hex};

use super::{ArgBytes, FunctionRegistry, TaskResult};

fn arity(func: &str, usage: &str, want: usize, args: &[ArgBytes]) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "{func}: expected {want} argument(s) ({usage}), got {}",
            args.len()
        ))
    }
}

fn parse_u64(func: &str, what: &str, arg: &[u8]) -> Result<u64, String> {
    let text = String::from_utf8_lossy(arg);
    text.parse::<u64>()
        .map_err(|_| format!("{func}: {what} must be a non-negative integer, got {text:?}"))
}

async fn echo(args: Vec<ArgBytes>) -> TaskResult {
    let mut out = Vec::with_capacity(args.iter().map(|a| a.len() + 1).sum());
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(a);
    }
    Ok(Bytes::from(out))
}

async fn sleep(args: Vec<ArgBytes>) -> TaskResult {
    arity("sleep", "MS", 1, &args)?;
    let ms = parse_u64("sleep", "MS", &args[0])?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(Bytes::from(ms.to_string()))
}

/// Granularity of the fill memory budget.
const BUDGET_UNIT: u64 = 1 << 20;

/// The memory every running `fill` shares: `max` bytes, counted in MiB.
struct FillBudget {
    max: u64,
    units: Arc<Semaphore>,
}

impl FillBudget {
    fn new(max: u64) -> Self {
        let units = (max.div_ceil(BUDGET_UNIT) as usize).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            max,
            units: Arc::new(Semaphore::new(units)),
        }
    }
}

async fn fill(args: Vec<ArgBytes>, budget: Arc<FillBudget>) -> TaskResult {
    arity("fill", "BYTES SEED", 2, &args)?;
    let len = parse_u64("fill", "BYTES", &args[0])?;
    let seed = parse_u64("fill", "SEED", &args[1])?;
    if len > budget.max {
        return Err(format!(
            "fill: {} is more than this worker lets built-ins take ({}: the smaller of its arena and --builtin-memory-bytes)",
            format_size(len),
            format_size(budget.max)
        ));
    }
    let len = usize::try_from(len).map_err(|_| format!("fill: BYTES {len} is too large"))?;
    let units = (len as u64).div_ceil(BUDGET_UNIT).max(1) as u32;
    let share = Arc::clone(&budget.units)
        .acquire_many_owned(units)
        .await
        .map_err(|e| format!("fill: {e}"))?;
    let out = tokio::task::spawn_blocking(move || Bytes::from(fill_bytes(len, seed)))
        .await
        .map_err(|e| format!("fill: {e}"));
    drop(share);
    out
}

async fn digest(args: Vec<ArgBytes>) -> TaskResult {
    arity("digest", "REF", 1, &args)?;
    let data = args.into_iter().next().unwrap_or_default();
    tokio::task::spawn_blocking(move || Bytes::from(sha256_hex(&data)))
        .await
        .map_err(|e| format!("digest: {e}"))
}

/// Add the built-ins to `r`; every `fill` running at once shares `memory_bytes`.
pub(super) fn register(r: &mut FunctionRegistry, memory_bytes: u64) {
    let budget = Arc::new(FillBudget::new(memory_bytes));
    r.register("echo", echo);
    r.register("sleep", sleep);
    r.register("fill", move |args| fill(args, Arc::clone(&budget)));
    r.register("digest", digest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<ArgBytes> {
        a.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    async fn run(name: &str, a: &[&str]) -> TaskResult {
        let r = FunctionRegistry::with_builtins(1 << 20);
        r.get(name).unwrap().call(args(a)).await
    }

    #[tokio::test]
    async fn echo_joins_with_single_spaces() {
        assert_eq!(
            run("echo", &["hello", "big", "world"]).await.unwrap(),
            "hello big world"
        );
        assert_eq!(run("echo", &[]).await.unwrap(), "");
    }

    #[tokio::test]
    async fn sleep_returns_its_argument() {
        assert_eq!(run("sleep", &["20"]).await.unwrap(), "20");
        let e = run("sleep", &["soon"]).await.unwrap_err();
        assert_eq!(e, "sleep: MS must be a non-negative integer, got \"soon\"");
        let e = run("sleep", &[]).await.unwrap_err();
        assert_eq!(e, "sleep: expected 1 argument(s) (MS), got 0");
    }

    #[tokio::test]
    async fn fill_checks_its_arguments() {
        assert_eq!(
            run("fill", &["100", "7"]).await.unwrap(),
            fill_bytes(100, 7)
        );
        let e = run("fill", &["abc", "1"]).await.unwrap_err();
        assert_eq!(e, "fill: BYTES must be a non-negative integer, got \"abc\"");
        let e = run("fill", &["1", "-3"]).await.unwrap_err();
        assert_eq!(e, "fill: SEED must be a non-negative integer, got \"-3\"");
        let e = run("fill", &["1"]).await.unwrap_err();
        assert_eq!(e, "fill: expected 2 argument(s) (BYTES SEED), got 1");
        let e = run("fill", &["2000000000", "1"]).await.unwrap_err();
        assert_eq!(
            e,
            "fill: 1.9 GiB is more than this worker lets built-ins take (1.0 MiB: the smaller of its arena and --builtin-memory-bytes)"
        );
    }

    #[tokio::test]
    async fn concurrent_fills_share_the_memory_budget() {
        let budget = Arc::new(FillBudget::new(3 << 20));
        let held = Arc::clone(&budget.units)
            .acquire_many_owned(2)
            .await
            .unwrap();
        let len = (2u64 << 20).to_string();
        let two_mib = args(&[len.as_str(), "1"]);
        let mut waiting = tokio::spawn(fill(two_mib, Arc::clone(&budget)));
        let early = tokio::time::timeout(Duration::from_millis(200), &mut waiting).await;
        assert!(early.is_err(), "2 MiB waits while only 1 MiB is free");
        drop(held);
        let out = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("admitted once the budget is free")
            .unwrap()
            .unwrap();
        assert_eq!(out.len(), 2 << 20);
        assert_eq!(budget.units.available_permits(), 3);
    }
}
