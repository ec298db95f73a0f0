use std::sync::Arc;

use tower_layer::Layer;

use super::{Deprecated, Deprecation};

/// Marks every response of the wrapped routes as deprecated, and answers 410 after the sunset.
///
/// See [`Deprecated`] for what the service does.
#[derive(Debug, Clone)]
#[must_use]
pub struct DeprecationLayer {
    config: Arc<Deprecation>,
}

impl DeprecationLayer {
    /// A layer for `deprecation`.
    pub fn new(deprecation: Deprecation) -> Self {
        Self {
            config: Arc::new(deprecation),
        }
    }
}

impl<S> Layer<S> for DeprecationLayer {
    type Service = Deprecated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deprecated {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
