//! The platform's processes on their own test hosts ([`Hosts`]), each component
//! replica on one, listening on its component's default port, and the faults a test
//! can put on the links between them.
//!
//! Every call between two hosts crosses the test segment. PostgreSQL stays on this
//! machine's loopback: the hosts reach it through a relay of this process on the
//! segment ([`Link`]). Pedidos' calls to estoque and to pagamentos go through a
//! [`Link`] each, which a test can slow down; every other call goes straight from
//! host to host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use pedidos_veloz::ComponentKind;

use super::hosts::Hosts;
use super::link::Link;

/// The far end of a link, seen from a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Service(ComponentKind),
    /// Its PostgreSQL database.
    Database,
}

/// The calls that go through a [`Link`] (caller, callee).
const SLOWABLE: [(ComponentKind, ComponentKind); 2] = [
    (ComponentKind::Pedidos, ComponentKind::Estoque),
    (ComponentKind::Pedidos, ComponentKind::Pagamentos),
];

pub struct Network {
    hosts: Hosts,
    slots: usize,
    database: Option<Link>,
    /// By (caller, callee, callee's slot).
    links: HashMap<(ComponentKind, ComponentKind, usize), Link>,
}

impl Network {
    /// One host per replica slot of every component; `database`: where PostgreSQL
    /// listens on this machine, if the platform uses it.
    pub async fn create(slots: usize, database: Option<SocketAddr>) -> Network {
        let names: Vec<String> = ComponentKind::ALL
            .iter()
            .flat_map(|kind| (0..slots).map(move |slot| format!("{}{slot}", kind.command())))
            .collect();
        let hosts = Hosts::create(&names);
        let own = SocketAddr::new(hosts.own_addr().into(), 0);
        let database = match database {
            Some(upstream) => Some(Link::start(own, upstream).await),
            None => None,
        };
        let mut network = Network {
            hosts,
            slots,
            database,
            links: HashMap::new(),
        };
        for (caller, callee) in SLOWABLE {
            for slot in 0..slots {
                let upstream = network.addr(callee, slot);
                let link = Link::start(own, upstream).await;
                network.links.insert((caller, callee, slot), link);
            }
        }
        network
    }

    fn host(&self, kind: ComponentKind, slot: usize) -> usize {
        self.hosts.host(&format!("{}{slot}", kind.command()))
    }

    /// Where one replica listens: its host's address, its component's default port.
    pub fn addr(&self, kind: ComponentKind, slot: usize) -> SocketAddr {
        let ip = self.hosts.addr(self.host(kind, slot));
        SocketAddr::new(ip.into(), kind.default_port())
    }

    /// The binary, to run on one replica's host.
    pub fn command(&self, kind: ComponentKind, slot: usize, program: &str) -> Command {
        self.hosts.command(self.host(kind, slot), program)
    }

    /// The URL list `caller` is given for `callee`: through the links where there are.
    pub fn urls(&self, caller: ComponentKind, callee: ComponentKind) -> String {
        let urls: Vec<String> = (0..self.slots)
            .map(|slot| {
                let addr = match self.links.get(&(caller, callee, slot)) {
                    Some(link) => link.addr(),
                    None => self.addr(callee, slot),
                };
                pedidos_veloz::url(addr)
            })
            .collect();
        urls.join(",")
    }

    /// A database URL of this machine, as the hosts reach it (through the relay).
    pub fn database_url(&self, url: &str) -> String {
        let relay = self
            .database
            .as_ref()
            .expect("the platform has no PostgreSQL")
            .addr();
        let (scheme, rest) = url.split_once("://").expect("a database URL");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{relay}{path}")
    }

    /// Where `from`'s hosts see `to`: the addresses and ports their packets go to.
    fn endpoints(&self, from: ComponentKind, to: Peer) -> Vec<SocketAddr> {
        match to {
            Peer::Database => self.database.iter().map(Link::addr).collect(),
            Peer::Service(callee) => (0..self.slots)
                .map(|slot| match self.links.get(&(from, callee, slot)) {
                    Some(link) => link.addr(),
                    None => self.addr(callee, slot),
                })
                .collect(),
        }
    }

    /// Drops `percent` % of the packets (100: all, a partition) between every host of
    /// `from` and `to`, both ways, silently: no RST, no ICMP, only timeouts tell.
    pub fn drop_packets(&self, from: ComponentKind, to: Peer, percent: u32) {
        for slot in 0..self.slots {
            self.drop_packets_of(from, slot, to, percent);
        }
    }

    /// [`Network::drop_packets`] for one replica of `from` only.
    pub fn drop_packets_of(&self, from: ComponentKind, slot: usize, to: Peer, percent: u32) {
        assert!((1..=100).contains(&percent), "a share of packets: 1-100 %");
        let chance = match percent {
            100 => String::new(),
            p => format!("numgen random mod 100 < {p} "),
        };
        let mut script = String::new();
        for endpoint in self.endpoints(from, to) {
            let (ip, port) = (endpoint.ip(), endpoint.port());
            script += &format!(
                "add rule inet pvfault out ip daddr {ip} tcp dport {port} {chance}drop\n\
                 add rule inet pvfault in ip saddr {ip} tcp sport {port} {chance}drop\n"
            );
        }
        self.hosts.nft(self.host(from, slot), &script);
    }

    /// Holds every chunk between `from` and `to` for `min..=max`, each way.
    pub fn delay(&self, from: ComponentKind, to: ComponentKind, min: Duration, max: Duration) {
        let mut found = false;
        for slot in 0..self.slots {
            if let Some(link) = self.links.get(&(from, to, slot)) {
                link.set_delay(min, max);
                found = true;
            }
        }
        assert!(
            found,
            "{} -> {} is not a link that can be slowed",
            from.name(),
            to.name()
        );
    }

    /// Ends every fault: no rule drops anything, no link delays.
    pub fn heal(&self) {
        for kind in ComponentKind::ALL {
            for slot in 0..self.slots {
                self.hosts.heal(self.host(kind, slot));
            }
        }
        for link in self.links.values() {
            link.set_delay(Duration::ZERO, Duration::ZERO);
        }
    }
}

/// The host and port of a database URL, resolved (PostgreSQL's 5432 if none).
pub fn database_addr(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    host.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.find(SocketAddr::is_ipv4))
        .unwrap_or_else(|| panic!("cannot resolve the database at {host}"))
}
