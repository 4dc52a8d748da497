//! Multi-process test of the compose deployment (issue 6): `deploy/up.sh` builds the `FROM
//! scratch` image from the binaries this test run already built and starts heads and workers as
//! hardened containers; the host `xnai` CLI drives the workload, containers are killed under
//! it, and `deploy/down.sh` must leave nothing behind; the image carries a signed SBOM that
//! `up.sh` checks (issue 21). Skipped when no Docker engine answers.

mod deployment;
mod t10_compose;
mod t20_provenance;
