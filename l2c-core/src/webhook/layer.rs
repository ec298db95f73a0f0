use std::sync::Arc;

use tower_layer::Layer;

use super::{Verifier, VerifyWebhook};

/// Verifies webhook deliveries before the inner service sees them.
///
/// See [`VerifyWebhook`] for what the service does; build the [`Verifier`] with the
/// subscription's secret(s) and the options you want.
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifyWebhookLayer {
    verifier: Arc<Verifier>,
}

impl VerifyWebhookLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
        }
    }
}

impl<S> Layer<S> for VerifyWebhookLayer {
    type Service = VerifyWebhook<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyWebhook::new(inner, Arc::clone(&self.verifier))
    }
}
