//! The files `xnai up` leaves in the data dir: `cluster.json` (what runs where, so `down` and a
//! later `up` know), `heads` (one `host:port` a line, for scripts) and `token` (mode 0600).
//! Every write goes to a temporary name first and is renamed into place.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One head process as recorded in `cluster.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRecord {
    /// Raft node id (1..=N).
    pub id: u64,
    /// Port it listens on; reused by the next `up` so clients' XNAI_HEAD stays valid.
    pub port: u16,
    /// host:port.
    pub address: String,
    /// Process id while running, `None` once stopped.
    pub pid: Option<u32>,
    /// Its sled directory (kept by `down`).
    pub data_dir: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

/// One worker process as recorded in `cluster.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// 1..=M.
    pub index: usize,
    /// host:port.
    pub address: String,
    /// Process id while running, `None` once stopped.
    pub pid: Option<u32>,
    /// Its tmpfs arena directory (removed by `down`).
    pub arena_dir: PathBuf,
    /// Its log file.
    pub log: PathBuf,
    /// CPUs it offers (`--cpus`: its share of the host, see `launcher::sizing`).
    #[serde(default)]
    pub cpus: f64,
    /// Memory it offers (`--memory-bytes`).
    #[serde(default)]
    pub memory_bytes: u64,
}

/// The whole `cluster.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Format version (1).
    pub version: u32,
    /// Arena capacity given to each worker.
    pub arena_bytes: u64,
    /// The Raft cluster id the heads share (chosen by the first `up`, reused after).
    #[serde(default)]
    pub cluster_id: String,
    /// Head processes.
    pub heads: Vec<HeadRecord>,
    /// Worker processes.
    pub workers: Vec<WorkerRecord>,
}

/// Paths inside a data dir.
#[derive(Clone, Debug)]
pub struct DataDir {
    /// The data dir itself.
    pub root: PathBuf,
}

impl DataDir {
    /// Wraps `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    /// `DIR/cluster.json`.
    pub fn cluster_file(&self) -> PathBuf {
        self.root.join("cluster.json")
    }
    /// `DIR/heads`.
    pub fn heads_file(&self) -> PathBuf {
        self.root.join("heads")
    }
    /// `DIR/token`.
    pub fn token_file(&self) -> PathBuf {
        self.root.join("token")
    }
    /// `DIR/run`, where children write their address files.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }
    /// `DIR/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// Address file of a child.
    pub fn addr_file(&self, name: &str) -> PathBuf {
        self.run_dir().join(format!("{name}.addr"))
    }
    /// Log file of a child.
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }
    /// A head's sled directory.
    pub fn head_data(&self, id: u64) -> PathBuf {
        self.root.join(format!("head-{id}"))
    }
}

/// Writes `bytes` to `path` atomically (temp file + rename) with the given mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all()
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", path.display()))
}

impl ClusterFile {
    /// Reads `DIR/cluster.json`; `None` if there is none.
    pub fn load(dir: &DataDir) -> Result<Option<Self>> {
        let path = dir.cluster_file();
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .with_context(|| format!("{} is not a valid cluster file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes `DIR/cluster.json`.
    pub fn save(&self, dir: &DataDir) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        write_atomic(&dir.cluster_file(), &text, 0o644)
    }

    /// The `heads` file's text: one `host:port` a line.
    pub fn heads_text(&self) -> String {
        self.heads
            .iter()
            .map(|h| format!("{}\n", h.address))
            .collect()
    }
}

/// Reads the token in `DIR/token`, or generates one and writes it there (mode 0600).
pub fn load_or_create_token(dir: &DataDir) -> Result<String> {
    let path = dir.token_file();
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let token = xnai_proto::auth::generate_token();
    write_atomic(&path, format!("{token}\n").as_bytes(), 0o600)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn cluster_file_round_trips_and_token_is_private_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        assert_eq!(ClusterFile::load(&dir).unwrap(), None);
        let file = ClusterFile {
            version: 1,
            arena_bytes: 1 << 30,
            cluster_id: "xnai-test".into(),
            heads: vec![HeadRecord {
                id: 1,
                port: 40123,
                address: "127.0.0.1:40123".into(),
                pid: Some(42),
                data_dir: dir.head_data(1),
                log: dir.log_file("head-1"),
            }],
            workers: vec![WorkerRecord {
                index: 1,
                address: "127.0.0.1:40200".into(),
                pid: None,
                arena_dir: "/dev/shm/xnai-arena-ab".into(),
                log: dir.log_file("worker-1"),
                cpus: 1.0,
                memory_bytes: 1 << 30,
            }],
        };
        file.save(&dir).unwrap();
        assert_eq!(ClusterFile::load(&dir).unwrap(), Some(file.clone()));
        assert_eq!(file.heads_text(), "127.0.0.1:40123\n");
        let t1 = load_or_create_token(&dir).unwrap();
        let mode = std::fs::metadata(dir.token_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_token(&dir).unwrap(), t1);
        std::fs::write(dir.cluster_file(), "{not json").unwrap();
        assert!(
            ClusterFile::load(&dir)
                .unwrap_err()
                .to_string()
                .contains("not a valid")
        );
    }
}
