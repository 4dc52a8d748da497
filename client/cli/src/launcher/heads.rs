//! Starting the heads of a local cluster: one head, or a Raft group of N whose peers know each
//! other's addresses up front (free ports bound first and handed to each head already bound,
//! so no other process can take one in between; then recorded in `cluster.json` with the
//! cluster id, so a later `up` on the same dir reuses both).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use xnai_proto::handover::{REBIND_PATIENCE, bind_for_child, bind_retrying};

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
        let mut bound = head_ports(n, previous)?;
        let ports: Vec<u16> = bound.iter().map(|(p, _)| *p).collect();
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
            let listener = bound[i]
                .1
                .take()
                .context("head listener already handed over")?;
            let mut args: Vec<String> = vec![
                "--id".into(),
                id.to_string(),
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
            self.children.push(Child::spawn(
                &name,
                head_bin,
                &args,
                token,
                &log,
                Some(listener),
            )?);
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

/// The port of each head with its listener, bound here and handed to the head when it starts:
/// the recorded port when the dir ran before (retried while in use for
/// [`REBIND_PATIENCE`], then a clear error), else a free port (peers must know each other's
/// addresses up front).
fn head_ports(
    n: usize,
    previous: Option<&ClusterFile>,
) -> Result<Vec<(u16, Option<std::net::TcpListener>)>> {
    let mut ports = Vec::with_capacity(n);
    for id in 1..=n as u64 {
        let recorded = previous
            .and_then(|p| p.heads.iter().find(|h| h.id == id))
            .map_or(0, |h| h.port);
        let l = if recorded != 0 {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], recorded));
            bind_retrying(addr, REBIND_PATIENCE).with_context(|| {
                format!("head-{id} must keep its recorded port {recorded} (its peers know it)")
            })?
        } else {
            bind_for_child().context("choosing a free port")?
        };
        ports.push((
            l.local_addr().context("choosing a free port")?.port(),
            Some(l),
        ));
    }
    Ok(ports)
}
