//! Turning command-line words into task arguments, ids and client settings: `@ID` is a
//! reference to object ID, `@@text` passes the literal text `@text`, anything else is its UTF-8
//! bytes. Errors say which word was wrong and how to write it.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;

use xnai_sdk::{Arg, ClientConfig, ObjectRef};

/// Parses one task argument as written on the command line.
pub fn parse_task_arg(word: &str) -> Result<Arg> {
    if let Some(rest) = word.strip_prefix("@@") {
        return Ok(Arg::Value(Bytes::from(format!("@{rest}"))));
    }
    if let Some(id) = word.strip_prefix('@') {
        return ObjectRef::parse(id).map(Arg::Ref).map_err(|e| {
            anyhow!("argument {word:?}: {e} (write @ and an object id; to pass text starting with @, write @@)")
        });
    }
    Ok(Arg::Value(Bytes::copy_from_slice(word.as_bytes())))
}

/// Parses every argument.
pub fn parse_task_args(words: &[String]) -> Result<Vec<Arg>> {
    words.iter().map(|w| parse_task_arg(w)).collect()
}

/// Parses an object id given as a command argument (a leading `@` is accepted).
pub fn parse_object_id(s: &str) -> Result<ObjectRef> {
    ObjectRef::parse(s.strip_prefix('@').unwrap_or(s)).map_err(|e| anyhow!("{e}"))
}

/// A `--timeout SECS` value; `None` means wait as long as it takes.
pub fn timeout(secs: Option<f64>) -> Result<Duration> {
    match secs {
        None => Ok(Duration::MAX),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s.min(1e9))),
        Some(s) => bail!("--timeout must be a non-negative number of seconds, got {s}"),
    }
}

/// The client settings from `--head`/`XNAI_HEAD` and `--token`/`XNAI_TOKEN`.
pub fn client_config(heads: &[String], token: Option<&str>) -> Result<ClientConfig> {
    let heads: Vec<String> = heads
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    if heads.is_empty() {
        bail!("no cluster: pass --head or set XNAI_HEAD (xnai up prints it)");
    }
    let token = match token.map(str::trim) {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => bail!("no cluster token: pass --token or set XNAI_TOKEN (xnai up prints it)"),
    };
    // No session: what the CLI submits must outlive it, until `xnai object free`.
    Ok(ClientConfig {
        session_lease: None,
        ..ClientConfig::new(heads, token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnai_proto::ids::ObjectId;

    #[test]
    fn refs_text_and_escapes() {
        let id = ObjectId::random();
        assert_eq!(
            parse_task_arg(&format!("@{id}")).unwrap(),
            Arg::Ref(ObjectRef::new(id))
        );
        assert_eq!(
            parse_task_arg("hello").unwrap(),
            Arg::Value(Bytes::from("hello"))
        );
        assert_eq!(
            parse_task_arg("@@x").unwrap(),
            Arg::Value(Bytes::from("@x"))
        );
        assert_eq!(parse_task_arg("").unwrap(), Arg::Value(Bytes::new()));
        let e = parse_task_arg("@abc").unwrap_err().to_string();
        assert!(e.contains("malformed object id") && e.contains("@@"), "{e}");
        assert!(parse_object_id(&format!("@{id}")).is_ok());
        assert!(
            parse_object_id("nope")
                .unwrap_err()
                .to_string()
                .contains("malformed object id")
        );
    }

    #[test]
    fn config_and_timeouts() {
        let e = client_config(&[], Some("t")).unwrap_err().to_string();
        assert_eq!(
            e,
            "no cluster: pass --head or set XNAI_HEAD (xnai up prints it)"
        );
        assert!(
            client_config(&["h:1".into()], None)
                .unwrap_err()
                .to_string()
                .contains("XNAI_TOKEN")
        );
        let c = client_config(&[" h:1 ".into(), "".into()], Some("t")).unwrap();
        assert_eq!(c.heads, vec!["h:1".to_string()]);
        assert_eq!(timeout(None).unwrap(), Duration::MAX);
        assert_eq!(timeout(Some(1.5)).unwrap(), Duration::from_millis(1500));
        assert!(timeout(Some(-1.0)).is_err());
    }
}
