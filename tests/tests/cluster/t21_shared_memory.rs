//! Same-host shared memory: the SDK maps a get straight from the worker's tmpfs arena and writes
//! a put into a file the worker reserved, with the same bytes as the gRPC streams either way; the
//! `LocalArena` service answers bad input with clear statuses, enforces its limits (arena
//! capacity, open puts) and loses nothing.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::Duration;

use bytes::Bytes;
use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::pb;
use xnai_sdk::{Client, ObjectRef};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster};

type LocalStub = pb::local_arena_client::LocalArenaClient<
    tonic::codegen::InterceptedService<Channel, TokenInject>,
>;

const WAIT: Duration = Duration::from_secs(30);

/// Whether this process has a mapping of a file whose name holds `needle`.
fn mapped(needle: &str) -> anyhow::Result<bool> {
    Ok(std::fs::read_to_string("/proc/self/maps")?.contains(needle))
}

/// Opens a raw local put for `data` and writes it into the reserved file the way the SDK does
/// (checking it is the worker's file); the put is not sealed yet.
async fn open_and_write(
    local: &mut LocalStub,
    data: &[u8],
) -> anyhow::Result<pb::CreateLocalPutReply> {
    let put = local
        .create_local_put(pb::CreateLocalPutRequest {
            size: data.len() as u64,
        })
        .await?
        .into_inner();
    let f = std::fs::OpenOptions::new().write(true).open(&put.path)?;
    let m = f.metadata()?;
    anyhow::ensure!((m.dev(), m.ino()) == (put.device, put.inode), "same file");
    f.write_all_at(data, 0)?;
    Ok(put)
}

/// Requires `r` to be refused with `code` and a message containing `needle`.
fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: tonic::Code, needle: &str) {
    let e = r.expect_err("the call must be refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(e.message().contains(needle), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t21_shared_memory_put_get_and_limits() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: cluster with 64 MiB arenas, a shared-memory and a streaming client");
    let c = start_cluster(ClusterOptions {
        arena_bytes: "64MiB".into(),
        ..Default::default()
    })?;
    let shm = c.client().await?;
    let mut config = c.client_config();
    config.shared_memory = false;
    let streamed = Client::connect(config).await?;

    tracing::info!("--- phase: puts and gets cross both paths byte for byte");
    let data = Bytes::from(xnai_sdk::builtins::fill_bytes(8 << 20, 21));
    let via_shm = shm.put(data.clone()).await?;
    let via_stream = streamed.put(data.clone()).await?;
    for r in [&via_shm, &via_stream] {
        for client in [&shm, &streamed] {
            assert!(client.get(r, WAIT).await? == data, "object {r} intact");
        }
    }

    tracing::info!(
        "--- phase: a shared-memory get is a mapping of the arena file, a streamed one is not"
    );
    let hex = via_shm.id().hex();
    let got = shm.get(&via_shm, WAIT).await?;
    assert!(mapped(&hex)?, "the get maps the arena file of {hex}");
    drop(got);
    assert!(!mapped(&hex)?, "dropping the bytes unmaps it");
    let got = streamed.get(&via_shm, WAIT).await?;
    assert!(!mapped(&hex)?, "a streamed get copies instead of mapping");
    assert!(got == data);

    tracing::info!("--- phase: the CLI puts and gets a file through shared memory");
    let src = c.data_dir.path().join("in.bin");
    std::fs::write(&src, &data)?;
    let id = c.xnai_ok(&["object", "put", src.to_str().unwrap()])?;
    let dst = c.data_dir.path().join("out.bin");
    c.xnai_ok(&["object", "get", &id, "-o", dst.to_str().unwrap()])?;
    assert!(std::fs::read(&dst)? == data, "CLI round trip byte for byte");
    let cli_ref = ObjectRef::parse(&id)?;
    assert!(streamed.get(&cli_ref, WAIT).await? == data);

    tracing::info!("--- phase: raw LocalArena calls on the worker holding the object");
    let info = shm.object_info(&via_shm).await?;
    let address = info.locations[0].address.clone();
    let ch = Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let mut bare = pb::local_arena_client::LocalArenaClient::new(ch.clone());
    refused(
        bare.open_object(pb::OpenObjectRequest {
            object_id: hex.clone(),
        })
        .await,
        tonic::Code::Unauthenticated,
        "token",
    );
    let mut local: LocalStub =
        pb::local_arena_client::LocalArenaClient::with_interceptor(ch, TokenInject::new(&c.token)?);
    let file = local
        .open_object(pb::OpenObjectRequest {
            object_id: hex.clone(),
        })
        .await?
        .into_inner();
    assert_eq!((file.size, file.crc32), (info.size, info.crc32));
    assert!(
        std::fs::read(&file.path)? == data,
        "the named file holds the object"
    );

    tracing::info!("--- phase: bad input gets a clear status");
    refused(
        local
            .open_object(pb::OpenObjectRequest {
                object_id: "xyz".into(),
            })
            .await,
        tonic::Code::InvalidArgument,
        "malformed object id",
    );
    refused(
        local
            .open_object(pb::OpenObjectRequest {
                object_id: "0000000000000000000000000000ab00".into(),
            })
            .await,
        tonic::Code::NotFound,
        "no object",
    );
    refused(
        local
            .create_local_put(pb::CreateLocalPutRequest { size: 0 })
            .await,
        tonic::Code::InvalidArgument,
        "at least 1 byte",
    );
    refused(
        local
            .create_local_put(pb::CreateLocalPutRequest { size: 65 << 20 })
            .await,
        tonic::Code::ResourceExhausted,
        "arena full",
    );
    refused(
        local
            .seal_local_put(pb::SealLocalPutRequest {
                ticket: 12345,
                crc32: 0,
            })
            .await,
        tonic::Code::NotFound,
        "no open local put",
    );

    tracing::info!("--- phase: a seal whose bytes do not match is refused and dropped");
    let small = Bytes::from(xnai_sdk::builtins::fill_bytes(1 << 20, 4));
    let put = open_and_write(&mut local, &small).await?;
    refused(
        local
            .seal_local_put(pb::SealLocalPutRequest {
                ticket: put.ticket,
                crc32: crc32fast::hash(&small) ^ 1,
            })
            .await,
        tonic::Code::InvalidArgument,
        "checksum mismatch",
    );
    assert!(!std::path::Path::new(&put.path).exists(), "file removed");
    refused(
        local
            .abort_local_put(pb::AbortLocalPutRequest { ticket: put.ticket })
            .await,
        tonic::Code::NotFound,
        "no open local put",
    );

    tracing::info!(
        "--- phase: at most 64 open puts; aborting them frees their slots (the put below needs one)"
    );
    let mut tickets = Vec::new();
    for _ in 0..xnai_proto::limits::MAX_OPEN_LOCAL_PUTS {
        let p = local
            .create_local_put(pb::CreateLocalPutRequest { size: 1 })
            .await?;
        tickets.push(p.into_inner().ticket);
    }
    refused(
        local
            .create_local_put(pb::CreateLocalPutRequest { size: 1 })
            .await,
        tonic::Code::ResourceExhausted,
        "local puts are open",
    );
    for t in tickets {
        local
            .abort_local_put(pb::AbortLocalPutRequest { ticket: t })
            .await?;
    }

    tracing::info!("--- phase: a well-formed raw put is an object every client reads");
    let put = open_and_write(&mut local, &small).await?;
    let reply = local
        .seal_local_put(pb::SealLocalPutRequest {
            ticket: put.ticket,
            crc32: crc32fast::hash(&small),
        })
        .await?
        .into_inner();
    let raw = ObjectRef::parse(&reply.object_id)?;
    assert!(streamed.get(&raw, WAIT).await? == small);
    assert!(shm.get(&raw, WAIT).await? == small);

    tracing::info!("--- phase: nothing was lost and the cluster keeps serving");
    for r in [&via_shm, &via_stream, &cli_ref] {
        assert!(streamed.get(r, WAIT).await? == data, "object {r} intact");
    }
    assert_eq!(c.xnai_ok(&["run", "echo", "ok"])?, "ok");
    Ok(())
}
