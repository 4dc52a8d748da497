//! Pieces every xnai gRPC server shares: the one server builder with its hard limits
//! ([`limits`]), the standard health service that follows the node's real state ([`health`]) and
//! reflection (so grpcurl and generated clients work unmodified).

pub mod health;
pub mod limits;

#[cfg(test)]
mod tests;

use tonic_health::server::HealthReporter;

pub use health::{NodeHealth, ProbeError, probe};
pub use limits::{ServerRole, incoming, server};

/// A bare standard `grpc.health.v1.Health` service whose overall status ("") starts SERVING.
/// For tools and benchmarks only: nodes use [`NodeHealth`], which starts NOT_SERVING and
/// follows reality. Health is exempt from the cluster token so orchestrators can probe it.
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    (reporter, service)
}

/// The gRPC reflection service (v1) describing every xnai service and the health service.
pub fn reflection() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}
