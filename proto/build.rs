//! Compiles the `.proto` contract with tonic-prost-build and a vendored protoc, so building
//! needs no system protoc; also writes the descriptor set that gRPC reflection serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/xnai/v1/common.proto",
        "proto/xnai/v1/head.proto",
        "proto/xnai/v1/registry.proto",
        "proto/xnai/v1/worker.proto",
        "proto/xnai/v1/peer.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Object bytes as `Bytes`: a put slices its buffer into chunks and a get hands a mapped
    // arena slice to the wire without copying either.
    config.bytes([".xnai.v1.PutObjectChunk.data", ".xnai.v1.ObjectChunk.data"]);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("xnai_descriptor.bin"))
        .compile_with_config(config, &protos, &["proto"])?;
    Ok(())
}
