//! How the CLI prints: aligned tables for people, one JSON document for `--json`, and object
//! values (UTF-8 text followed by a newline, other bytes raw) for `run`, `object get` and
//! `actor call`.

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};

/// Prints `v` as one JSON document on stdout.
pub fn print_json<T: Serialize>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).context("writing JSON")?;
    writeln!(out).context("writing JSON")?;
    Ok(())
}

/// Renders rows under headers with columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Writes a value for people and scripts: UTF-8 text plus a newline, other bytes raw.
pub fn write_value(out: &mut impl Write, bytes: &[u8]) -> Result<()> {
    out.write_all(bytes).context("writing to stdout")?;
    if std::str::from_utf8(bytes).is_ok() {
        out.write_all(b"\n").context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")
}

/// A value as JSON fields: `"value"` for UTF-8 text, `"value_hex"` otherwise, and `"size"`.
pub fn value_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => json!({ "size": bytes.len(), "value": s }),
        Err(_) => json!({ "size": bytes.len(), "value_hex": hex::encode(bytes) }),
    }
}

/// Merges the fields of `extra` (an object) into `base` (an object).
pub fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_values_print() {
        let t = table(
            &["NAME", "ID"],
            &[
                vec!["c".into(), "123".into()],
                vec!["long-name".into(), "4".into()],
            ],
        );
        assert_eq!(t, "NAME       ID\nc          123\nlong-name  4\n");
        let mut out = Vec::new();
        write_value(&mut out, b"hello").unwrap();
        assert_eq!(out, b"hello\n");
        let mut raw = Vec::new();
        write_value(&mut raw, &[0xff, 0x00]).unwrap();
        assert_eq!(raw, vec![0xff, 0x00]);
        assert_eq!(value_json(b"hi"), json!({"size": 2, "value": "hi"}));
        assert_eq!(value_json(&[0xff]), json!({"size": 1, "value_hex": "ff"}));
        assert_eq!(
            merge(json!({"a": 1}), json!({"b": 2})),
            json!({"a": 1, "b": 2})
        );
    }
}
