//! Who is calling: the authenticated client and its scopes.
//!
//! The auth layer puts an [`AuthenticatedClient`] into the request's extensions; every layer after
//! it (rate limit, concurrency cap, idempotency) and the handlers read it from there.
//!
//! ```
//! use l2c_core::{Scope, Scopes};
//!
//! let scopes: Scopes = "leads:write orders:read".parse().unwrap();
//! assert!(scopes.contains(Scope::LeadsWrite));
//! assert!(!scopes.contains(Scope::OrdersWrite));
//! assert_eq!(scopes.to_string(), "leads:write orders:read");
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A partner application's `client_id`: cheap to clone, compared by value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// Wraps a client id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ClientId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for ClientId {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// One permission of the open platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// `leads:write` — push leads.
    LeadsWrite,
    /// `customers:read` — read masked customer profiles.
    CustomersRead,
    /// `orders:read` — read order status.
    OrdersRead,
    /// `orders:write` — sync orders from an ERP.
    OrdersWrite,
    /// `showroom:read` — read showroom items.
    ShowroomRead,
    /// `webhooks:manage` — manage webhook subscriptions.
    WebhooksManage,
    /// `reports:export` — export reports.
    ReportsExport,
    /// `lead-sources:manage` — manage the client's lead sources (the ad platforms' push URLs).
    LeadSourcesManage,
    /// `leads:read` — read the client's own leads (masked).
    LeadsRead,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 9] = [
        Scope::LeadsWrite,
        Scope::CustomersRead,
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::ShowroomRead,
        Scope::WebhooksManage,
        Scope::ReportsExport,
        Scope::LeadSourcesManage,
        Scope::LeadsRead,
    ];

    /// The scope's wire name, e.g. `leads:write`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::LeadsWrite => "leads:write",
            Scope::CustomersRead => "customers:read",
            Scope::OrdersRead => "orders:read",
            Scope::OrdersWrite => "orders:write",
            Scope::ShowroomRead => "showroom:read",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::ReportsExport => "reports:export",
            Scope::LeadSourcesManage => "lead-sources:manage",
            Scope::LeadsRead => "leads:read",
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// A set of [`Scope`]s; `Copy`, and checked with one AND.
///
/// Parses from and prints as the OAuth form: names separated by spaces (commas are accepted when
/// parsing, for command lines).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u16);

impl Scopes {
    /// No scope at all.
    pub const fn empty() -> Self {
        Scopes(0)
    }

    /// Every scope.
    pub const fn all() -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < Scope::ALL.len() {
            bits |= Scope::ALL[i].bit();
            i += 1;
        }
        Scopes(bits)
    }

    /// The set holding only `scope`.
    pub const fn one(scope: Scope) -> Self {
        Scopes(scope.bit())
    }

    /// This set plus `scope`.
    #[must_use]
    pub const fn with(self, scope: Scope) -> Self {
        Scopes(self.0 | scope.bit())
    }

    /// Whether `scope` is in the set.
    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in this set.
    pub const fn contains_all(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The scopes both sets hold.
    #[must_use]
    pub const fn intersection(self, other: Scopes) -> Self {
        Scopes(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes in the set, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl From<Scope> for Scopes {
    fn from(scope: Scope) -> Self {
        Scopes::one(scope)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Scopes::empty(), Scopes::with)
    }
}

impl FromStr for Scopes {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split([' ', ','])
            .filter(|part| !part.is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The caller of a request, as established by the auth layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedClient {
    /// The client's `client_id` (the token's `sub`).
    pub client_id: ClientId,
    /// The scopes the token grants.
    pub scopes: Scopes,
}

impl AuthenticatedClient {
    /// A client with the given id and scopes.
    pub fn new(client_id: impl Into<ClientId>, scopes: Scopes) -> Self {
        Self {
            client_id: client_id.into(),
            scopes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_wire_form() {
        let all = Scopes::all();
        assert_eq!(all.to_string().parse::<Scopes>(), Ok(all));
        assert_eq!(all.iter().count(), Scope::ALL.len());
    }

    #[test]
    fn unknown_scope_is_named_in_the_error() {
        let err = "leads:write admin".parse::<Scopes>().unwrap_err();
        assert_eq!(err.to_string(), "unknown scope `admin`");
    }

    #[test]
    fn commas_and_repeated_spaces_are_accepted() {
        let s: Scopes = "orders:read,  orders:write".parse().unwrap();
        assert!(s.contains_all(Scopes::one(Scope::OrdersRead).with(Scope::OrdersWrite)));
        assert!(!s.contains(Scope::LeadsWrite));
    }
}
