//! The gateway's one route table: for each public path family, the upstream that
//! serves it, who may call it, and the words of its paths. The router, the proxy, the
//! metrics' route labels, the authorisation and the OpenAPI document all read it.

use axum::http::Method;

use crate::auth::{Access, Role};

/// The services behind the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Pedidos,
    Pagamentos,
    Estoque,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Pedidos, Backend::Pagamentos, Backend::Estoque];

    /// The seed's name, used in errors: `pedidos-service`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Pedidos => platform::names::PEDIDOS,
            Backend::Pagamentos => platform::names::PAGAMENTOS,
            Backend::Estoque => platform::names::ESTOQUE,
        }
    }

    /// The short name, used in metrics and `/health`: `pedidos`.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Pedidos => "pedidos",
            Backend::Pagamentos => "pagamentos",
            Backend::Estoque => "estoque",
        }
    }
}

/// Which methods a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Methods {
    /// GET and HEAD.
    Read,
    Any,
}

/// Which paths of a route a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paths {
    /// The route's prefix itself (`/orders`), not its sub-paths.
    Collection,
    Any,
}

/// One access rule; a route's first rule that matches a call decides it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub methods: Methods,
    pub paths: Paths,
    pub access: Access,
}

/// One public path family.
#[derive(Debug)]
pub struct Route {
    /// `/orders`: the path and everything under it.
    pub prefix: &'static str,
    pub backend: Backend,
    /// Paths under the prefix that are the service's internal calls: never proxied.
    pub internal: &'static [&'static str],
    /// Path segments after the prefix that are words of the API; any other is an id.
    pub words: &'static [&'static str],
    pub rules: &'static [Rule],
}

const fn rule(methods: Methods, paths: Paths, access: Access) -> Rule {
    Rule {
        methods,
        paths,
        access,
    }
}

/// The catalogue is public; placing, listing, reading and cancelling one's orders needs
/// a customer (a client key or a token; pedidos shows a customer their own orders only,
/// an admin all of them); item management and everything about payments needs an
/// admin (SPEC section 6).
pub static ROUTES: [Route; 3] = [
    Route {
        prefix: "/orders",
        backend: Backend::Pedidos,
        internal: &[],
        words: &["cancel"],
        rules: &[rule(Methods::Any, Paths::Any, Access::Needs(Role::Client))],
    },
    Route {
        prefix: "/payments",
        backend: Backend::Pagamentos,
        // The orders service's fence, not a public call.
        internal: &["/payments/void"],
        words: &["refund"],
        rules: &[rule(Methods::Any, Paths::Any, Access::Needs(Role::Admin))],
    },
    Route {
        prefix: "/items",
        backend: Backend::Estoque,
        internal: &[],
        words: &["reserve", "write-off", "release"],
        rules: &[
            rule(Methods::Read, Paths::Any, Access::Anyone),
            rule(Methods::Any, Paths::Any, Access::Needs(Role::Admin)),
        ],
    },
];

impl Route {
    /// The route of a path: its prefix, or a sub-path of it.
    pub fn of(path: &str) -> Option<&'static Route> {
        ROUTES.iter().find(|route| route.covers(path))
    }

    pub fn covers(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Whether a path of this route is proxied (not one of the service's internal calls).
    pub fn exposes(&self, path: &str) -> bool {
        !self.internal.contains(&path.trim_end_matches('/'))
    }

    /// Who may make this call.
    pub fn access(&self, method: &Method, path: &str) -> Access {
        let read = method == Method::GET || method == Method::HEAD;
        let collection = path.trim_end_matches('/') == self.prefix;
        self.rules
            .iter()
            .find(|rule| {
                (rule.methods == Methods::Any || read) && (rule.paths == Paths::Any || collection)
            })
            .map_or(Access::Needs(Role::Admin), |rule| rule.access)
    }

    /// `/orders/42/cancel` → `/orders/{id}/cancel`: a bounded label for metrics and logs.
    pub fn label(&self, path: &str) -> String {
        let rest = &path[self.prefix.len().min(path.len())..];
        let mut label = String::with_capacity(path.len());
        label.push_str(self.prefix);
        for segment in rest.split('/').filter(|s| !s.is_empty()) {
            label.push('/');
            label.push_str(if self.words.contains(&segment) {
                segment
            } else {
                "{id}"
            });
        }
        label
    }
}

/// Who may make a call to any path (admin for a path no route covers).
pub fn access(method: &Method, path: &str) -> Access {
    Route::of(path).map_or(Access::Needs(Role::Admin), |route| {
        route.access(method, path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_has_one_route_and_one_label() {
        let orders = Route::of("/orders/42/cancel").unwrap();
        assert_eq!(orders.backend, Backend::Pedidos);
        assert_eq!(orders.label("/orders/42/cancel"), "/orders/{id}/cancel");
        assert_eq!(orders.label("/orders"), "/orders");
        let items = Route::of("/items/abc%20x/reserve").unwrap();
        assert_eq!(items.label("/items/abc%20x/reserve"), "/items/{id}/reserve");
        assert!(Route::of("/itemsx").is_none());
        assert!(Route::of("/nowhere").is_none());
        let payments = Route::of("/payments/void").unwrap();
        assert!(!payments.exposes("/payments/void"));
        assert!(payments.exposes("/payments/7/refund"));
    }

    #[test]
    fn access_follows_the_first_matching_rule() {
        assert_eq!(access(&Method::GET, "/items/3"), Access::Anyone);
        assert_eq!(access(&Method::POST, "/items"), Access::Needs(Role::Admin));
        assert_eq!(access(&Method::GET, "/orders"), Access::Needs(Role::Client));
        assert_eq!(
            access(&Method::GET, "/orders/7"),
            Access::Needs(Role::Client)
        );
        assert_eq!(
            access(&Method::POST, "/orders"),
            Access::Needs(Role::Client)
        );
        assert_eq!(
            access(&Method::GET, "/payments"),
            Access::Needs(Role::Admin)
        );
        assert_eq!(access(&Method::GET, "/nowhere"), Access::Needs(Role::Admin));
    }
}
