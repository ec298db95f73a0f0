use tower_layer::Layer;

use super::GrpcRefusal;

/// Turns the problem responses of the layers inside it into gRPC statuses for gRPC requests;
/// see the [module docs](super).
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct GrpcRefusalLayer {
    _private: (),
}

impl GrpcRefusalLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for GrpcRefusalLayer {
    type Service = GrpcRefusal<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcRefusal { inner }
    }
}
