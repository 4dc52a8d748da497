//! The built-in `counter` actor class: an integer with `incr [N]` and `get`, both answering the
//! value as decimal text. Used by the tests, the benchmarks and the README's first steps.

use bytes::Bytes;

use super::{ActorBehavior, MethodResult};

/// A counter's state.
#[derive(Debug, Default)]
pub struct Counter {
    value: i64,
}

fn parse_i64(what: &str, arg: &[u8]) -> Result<i64, String> {
    let text = String::from_utf8_lossy(arg);
    text.trim()
        .parse::<i64>()
        .map_err(|_| format!("{what} must be an integer, got {text:?}"))
}

/// Constructor: optional initial value (default 0).
pub fn construct(args: Vec<Bytes>) -> Result<Box<dyn ActorBehavior>, String> {
    let value = match args.as_slice() {
        [] => 0,
        [v] => parse_i64("counter: initial value", v)?,
        more => {
            return Err(format!(
                "counter: expected at most 1 argument (initial value), got {}",
                more.len()
            ));
        }
    };
    Ok(Box::new(Counter { value }))
}

impl ActorBehavior for Counter {
    fn call(&mut self, method: &str, args: Vec<Bytes>) -> MethodResult {
        match method {
            "incr" => {
                let n = match args.as_slice() {
                    [] => 1,
                    [n] => parse_i64("counter.incr: N", n)?,
                    more => {
                        return Err(format!(
                            "counter.incr: expected at most 1 argument (N), got {}",
                            more.len()
                        ));
                    }
                };
                self.value = self
                    .value
                    .checked_add(n)
                    .ok_or_else(|| format!("counter.incr: {} + {n} overflows", self.value))?;
            }
            "get" if args.is_empty() => {}
            "get" => {
                return Err(format!(
                    "counter.get: expected no arguments, got {}",
                    args.len()
                ));
            }
            other => {
                return Err(format!(
                    "counter has no method {other:?}; methods: incr, get"
                ));
            }
        }
        Ok(Bytes::from(self.value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn counts_and_reports() {
        let mut c = construct(vec![]).unwrap();
        assert_eq!(c.call("incr", vec![]).unwrap(), "1");
        assert_eq!(c.call("incr", vec![b("5")]).unwrap(), "6");
        assert_eq!(c.call("get", vec![]).unwrap(), "6");
        let mut c = construct(vec![b("-10")]).unwrap();
        assert_eq!(c.call("incr", vec![b("3")]).unwrap(), "-7");
    }

    #[test]
    fn errors_name_the_problem() {
        let mut c = construct(vec![]).unwrap();
        assert_eq!(
            c.call("foo", vec![]).unwrap_err(),
            "counter has no method \"foo\"; methods: incr, get"
        );
        assert_eq!(
            c.call("incr", vec![b("x")]).unwrap_err(),
            "counter.incr: N must be an integer, got \"x\""
        );
        assert_eq!(
            construct(vec![b("ten")]).err().unwrap(),
            "counter: initial value must be an integer, got \"ten\""
        );
        let mut c = construct(vec![b(&i64::MAX.to_string())]).unwrap();
        assert!(c.call("incr", vec![]).unwrap_err().contains("overflows"));
    }
}
