//! Starting the heads of a local cluster: one head, or a Raft group of N whose peers know each
//! other's addresses up front (free ports chosen first, then recorded in `cluster.json` with
//! the cluster id, so a later `up` on the same dir reuses both).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::Cluster;
use super::files::{ClusterFile, HeadRecord};
use super::procs::Child;

impl Cluster {
    /// Start `n` heads and wait until each one serves (has written its address file).
    pub(super) async fn start_heads(
        &mut self,
        n: usize,
        previous: Option<&ClusterFile>,
        head_bin: &Path,
        token: &str,
        deadline: Instant,
    ) -> Result<()> {
        let ports = head_ports(n, previous)?;
        let peers = if n > 1 {
            ports
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::new()
        };
        for (i, &port) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let name = format!("head-{id}");
            let addr_file = self.dir.addr_file(&name);
            let _ = std::fs::remove_file(&addr_file);
            let data_dir = self.dir.head_data(id);
            let mut args: Vec<String> = vec![
                "--id".into(),
                id.to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--data-dir".into(),
                data_dir.display().to_string(),
                "--addr-file".into(),
                addr_file.display().to_string(),
                "--cluster-id".into(),
                self.file.cluster_id.clone(),
            ];
            if !peers.is_empty() {
                args.extend(["--peers".into(), peers.clone()]);
            }
            let log = self.dir.log_file(&name);
            self.children
                .push(Child::spawn(&name, head_bin, &args, token, &log)?);
            let child = self.children.last().context("head child just pushed")?;
            self.file.heads.push(HeadRecord {
                id,
                port,
                address: String::new(),
                pid: Some(child.pid),
                data_dir,
                log,
            });
        }
        for (i, h) in self.file.heads.iter_mut().enumerate() {
            let child = &mut self.children[i];
            let address = child
                .wait_addr_file(&self.dir.addr_file(&child.name), deadline)
                .await?;
            h.port = address
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or(h.port);
            h.address = address.clone();
            self.report.heads.push(address);
        }
        Ok(())
    }
}

/// The port of each head: the recorded one when the dir ran before, else (for more than one
/// head, whose peers must know each other's addresses up front) a free port chosen now; a
/// single new head binds port 0 and reports what it got.
fn head_ports(n: usize, previous: Option<&ClusterFile>) -> Result<Vec<u16>> {
    // Listeners stay open until every port is chosen, so no two heads get the same one.
    let mut held = Vec::new();
    let mut ports = Vec::with_capacity(n);
    for id in 1..=n as u64 {
        let recorded = previous
            .and_then(|p| p.heads.iter().find(|h| h.id == id))
            .map_or(0, |h| h.port);
        if recorded != 0 || n == 1 {
            ports.push(recorded);
            continue;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").context("choosing a free port")?;
        ports.push(l.local_addr().context("choosing a free port")?.port());
        held.push(l);
    }
    drop(held);
    Ok(ports)
}
