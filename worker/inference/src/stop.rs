//! Turning token bytes into the text a `generate` stream may emit: a UTF-8 assembler (a
//! character may be split across tokens) and a stop-string filter that holds back any tail
//! that could still become a stop string, so no text past a stop string ever leaves.

/// Assembles token bytes into complete UTF-8 text.
#[derive(Debug, Default)]
pub struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Adds `bytes`; returns the text that is now complete. Invalid sequences become U+FFFD;
    /// an incomplete sequence at the end is kept for the next call.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix up to `valid` is UTF-8 by the error's contract.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end (an incomplete character) as replacement characters.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// What the stop filter decided for a new piece of text.
#[derive(Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Emit this text (may be empty) and continue.
    Continue(String),
    /// Emit this text, then stop: a stop string was found.
    Stopped(String),
}

/// Cuts generated text before the first stop string, holding back suffixes that may grow
/// into one.
#[derive(Debug)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

impl StopFilter {
    /// A filter for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds newly generated text.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        self.held.push_str(text);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first_stop {
            let out = self.held[..at].to_string();
            self.held.clear();
            return StopOutcome::Stopped(out);
        }
        let keep = self.longest_partial_suffix();
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        StopOutcome::Continue(out)
    }

    /// The text still held back, at the end of generation.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string
    /// (always on a character boundary).
    fn longest_partial_suffix(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            let max = stop.len().saturating_sub(1).min(self.held.len());
            for len in (best + 1..=max).rev() {
                let start = self.held.len() - len;
                if self.held.is_char_boundary(start) && stop.starts_with(&self.held[start..]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut f = StopFilter::new(&stops);
        let mut out = String::new();
        for p in pieces {
            match f.push(p) {
                StopOutcome::Continue(t) => out.push_str(&t),
                StopOutcome::Stopped(t) => {
                    out.push_str(&t);
                    return (out, true);
                }
            }
        }
        out.push_str(&f.finish());
        (out, false)
    }

    #[test]
    fn cuts_before_stop_split_over_pieces() {
        assert_eq!(
            run(&["\nQuestion"], &["Paris", ".\nQue", "stion: x"]),
            ("Paris.".into(), true)
        );
        assert_eq!(run(&["END"], &["abcEN", "D more"]), ("abc".into(), true));
    }

    #[test]
    fn holds_back_only_possible_prefixes() {
        let stops = vec!["STOP".to_string()];
        let mut f = StopFilter::new(&stops);
        assert_eq!(f.push("hello S"), StopOutcome::Continue("hello ".into()));
        assert_eq!(f.push("x"), StopOutcome::Continue("Sx".into()));
        assert_eq!(f.finish(), "");
    }

    #[test]
    fn no_stops_passes_through() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        assert_eq!(run(&[""], &["a"]), ("a".into(), false));
    }

    #[test]
    fn earliest_stop_wins() {
        assert_eq!(run(&["b", "a"], &["xab"]), ("x".into(), true));
    }

    #[test]
    fn multibyte_text_is_safe() {
        assert_eq!(run(&["é!"], &["café", "é", "!"]), ("café".into(), true));
    }

    #[test]
    fn utf8_split_across_tokens() {
        let mut a = Utf8Assembler::default();
        let euro = "€".as_bytes();
        assert_eq!(a.push(&euro[..1]), "");
        assert_eq!(a.push(&euro[1..2]), "");
        assert_eq!(a.push(&[euro[2], b'x']), "€x");
        assert_eq!(a.push(&[0xff, b'y']), "\u{fffd}y");
        assert_eq!(a.push(&euro[..2]), "");
        assert_eq!(a.finish(), "\u{fffd}");
    }
}
