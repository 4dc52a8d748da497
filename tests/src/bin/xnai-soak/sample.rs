//! One sample of the cluster under soak: tasks done, rate, and per head its resident memory
//! (`/proc/PID/status`: total, anonymous, file-backed), data directory bytes and applied
//! index, plus the control state's entries and bytes from `xnai status`. Samples are appended
//! to a CSV file as they are taken, so a run cut short still leaves its curve.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// What `/proc/PID/status` says about a process's resident memory, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rss {
    /// `VmRSS`: all resident pages.
    pub total: u64,
    /// `RssAnon`: heap, stacks, anonymous mappings (the allocator's share).
    pub anon: u64,
    /// `RssFile`: file pages mapped in (binary, libraries, mmapped files).
    pub file: u64,
}

/// Resident memory of process `pid` (zeros if it cannot be read, e.g. it exited).
pub fn rss(pid: u32) -> Rss {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Rss::default();
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Rss {
        total: field("VmRSS:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
    }
}

/// Total size of the files under `dir` (0 for what cannot be read).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One head at one sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadSample {
    /// Raft id.
    pub id: u64,
    /// "leader", "follower", ... as status reports it.
    pub role: String,
    /// Resident memory.
    pub rss: Rss,
    /// Bytes under its data directory (`DIR/head-ID`).
    pub data_bytes: u64,
    /// Its applied index as status reports it.
    pub applied: u64,
}

/// The cluster at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the load started.
    pub elapsed_s: f64,
    /// "load", "settled" or "join".
    pub phase: &'static str,
    /// Tasks read and released so far.
    pub done: u64,
    /// Tasks per second since the previous sample.
    pub rate: f64,
    /// Live records of the control state (workers, tasks, objects, actors, sessions).
    pub state_entries: u64,
    /// Bytes of the state as bincode encodes it: the payload of a snapshot.
    pub state_bytes: u64,
    /// Ring sizes: finished-task summaries, freed-object tombstones, request ids.
    pub history: u64,
    pub tombstones: u64,
    pub requests: u64,
    /// Bytes under every head's data directory together.
    pub data_bytes: u64,
    /// Per head, in id order.
    pub heads: Vec<HeadSample>,
}

impl Sample {
    /// The head with `id`, if the sample has it.
    pub fn head(&self, id: u64) -> Option<&HeadSample> {
        self.heads.iter().find(|h| h.id == id)
    }
}

/// Take a sample from a status reply; `dir` is the cluster's data directory.
pub fn take(
    st: &xnai_sdk::ClusterStatus,
    dir: &Path,
    elapsed_s: f64,
    phase: &'static str,
    done: u64,
    rate: f64,
) -> Sample {
    let mut heads: Vec<HeadSample> = st
        .heads
        .iter()
        .map(|h| HeadSample {
            id: h.id,
            role: h.role.clone(),
            rss: rss(h.pid),
            data_bytes: dir_bytes(&dir.join(format!("head-{}", h.id))),
            applied: h.commit_index,
        })
        .collect();
    heads.sort_by_key(|h| h.id);
    Sample {
        elapsed_s,
        phase,
        done,
        rate,
        state_entries: st.state.entries(),
        state_bytes: st.state.approx_bytes,
        history: st.state.history,
        tombstones: st.state.tombstones,
        requests: st.state.requests,
        data_bytes: heads.iter().map(|h| h.data_bytes).sum(),
        heads,
    }
}

/// The CSV file samples go to, one row each, with a fixed column per head id.
pub struct Csv {
    file: std::fs::File,
    head_ids: Vec<u64>,
    /// Where it is.
    pub path: PathBuf,
}

impl Csv {
    /// Create `path` and write the header for heads `head_ids`.
    pub fn create(path: &Path, head_ids: Vec<u64>) -> Result<Self> {
        let mut file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut header = String::from(
            "elapsed_s,phase,done,rate,state_entries,state_bytes,history,tombstones,requests,data_bytes",
        );
        for id in &head_ids {
            header.push_str(&format!(
                ",h{id}_role,h{id}_rss,h{id}_rss_anon,h{id}_rss_file,h{id}_data_bytes,h{id}_applied"
            ));
        }
        writeln!(file, "{header}")?;
        Ok(Self {
            file,
            head_ids,
            path: path.to_path_buf(),
        })
    }

    /// Append one row and flush it.
    pub fn write(&mut self, s: &Sample) -> Result<()> {
        let mut row = format!(
            "{:.1},{},{},{:.0},{},{},{},{},{},{}",
            s.elapsed_s,
            s.phase,
            s.done,
            s.rate,
            s.state_entries,
            s.state_bytes,
            s.history,
            s.tombstones,
            s.requests,
            s.data_bytes
        );
        for id in &self.head_ids {
            match s.head(*id) {
                Some(h) => row.push_str(&format!(
                    ",{},{},{},{},{},{}",
                    h.role, h.rss.total, h.rss.anon, h.rss.file, h.data_bytes, h.applied
                )),
                None => row.push_str(",,,,,,"),
            }
        }
        writeln!(self.file, "{row}")?;
        self.file.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_of_this_process_is_read() {
        let r = rss(std::process::id());
        assert!(r.total > 0 && r.anon > 0 && r.total >= r.anon, "{r:?}");
        assert_eq!(rss(u32::MAX), Rss::default());
    }

    #[test]
    fn csv_rows_have_a_column_per_head() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.csv");
        let mut csv = Csv::create(&path, vec![1, 2])?;
        let s = Sample {
            phase: "load",
            done: 7,
            heads: vec![HeadSample {
                id: 2,
                role: "leader".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        csv.write(&s)?;
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let cols = |l: &str| l.split(',').count();
        assert_eq!(cols(lines[0]), cols(lines[1]), "{text}");
        assert!(lines[1].contains(",,,,,,leader,"), "{text}");
        Ok(())
    }
}
