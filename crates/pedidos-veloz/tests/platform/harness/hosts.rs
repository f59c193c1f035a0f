//! Test hosts: one Linux network namespace per process, each with its own address on
//! a private segment, so that the network between two components can fail for real.
//!
//! The segment is a bridge inside a namespace of its own (the "switch"); every host,
//! and this test process (from the machine's own namespace, to reach the gateways and
//! to relay PostgreSQL), is plugged into it by a veth pair. Addresses are a /24 of
//! 10.0.0.0/8 that no interface or route of the machine uses; nothing else is
//! touched: no sysctl, no rule outside the hosts' own namespaces, and deleting the
//! namespaces removes every device the test made.
//!
//! Faults are nftables rules in a host's namespace (`numgen random` for a share of
//! packets, a plain `drop` for a partition): dropped packets get no RST and no ICMP,
//! so only timeouts can tell.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace of one run is named `pvnet<pid>x<n>-…`: a later run removes those
/// of a run that died before cleaning up.
const PREFIX: &str = "pvnet";

/// Segments made by this process so far: the kernel removes a deleted namespace's
/// devices in the background, so each segment has names of its own.
static SEGMENTS: AtomicU32 = AtomicU32::new(0);

pub struct Hosts {
    run: String,
    /// Short, for interface names (15 bytes at most).
    tag: String,
    /// The first three octets of the segment.
    net: [u8; 3],
    names: Vec<String>,
}

impl Hosts {
    /// Makes the segment with one host per name (their addresses in that order).
    pub fn create(names: &[String]) -> Hosts {
        remove_stale();
        let n = SEGMENTS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let run = format!("{PREFIX}{pid}x{n}");
        let tag = format!("{:06x}", (u64::from(pid) * 64 + u64::from(n)) % 0x100_0000);
        let net = free_subnet();
        let hosts = Hosts {
            run,
            tag,
            net,
            names: names.to_vec(),
        };
        let switch = hosts.switch();
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        // This process's own end: in the machine's namespace, the peer in the switch.
        let own = hosts.veth_name(0);
        hosts.plug(&own, None);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", hosts.own_addr()),
            "dev",
            &own,
        ]);
        ip(&["link", "set", &own, "up"]);
        for n in 0..names.len() {
            let ns = hosts.namespace(n);
            ip(&["netns", "add", &ns]);
            let dev = hosts.veth_name(n + 1);
            hosts.plug(&dev, Some(&ns));
            let addr = format!("{}/24", hosts.addr(n));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &dev]);
            ip(&["-n", &ns, "link", "set", &dev, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            hosts.nft(
                n,
                "table inet pvfault {\n\
                   chain out { type filter hook output priority 0; }\n\
                   chain in { type filter hook input priority 0; }\n\
                 }\n",
            );
        }
        hosts
    }

    /// A veth pair: `dev` in `ns` (or this namespace), its peer on the switch's bridge.
    fn plug(&self, dev: &str, ns: Option<&str>) {
        let peer = format!("{dev}p");
        let switch = self.switch();
        ip(&["link", "add", dev, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &switch]);
        ip(&["-n", &switch, "link", "set", &peer, "master", "br0"]);
        ip(&["-n", &switch, "link", "set", &peer, "up"]);
        if let Some(ns) = ns {
            ip(&["link", "set", dev, "netns", ns]);
        }
    }

    fn switch(&self) -> String {
        format!("{}-switch", self.run)
    }

    fn namespace(&self, host: usize) -> String {
        format!("{}-{}", self.run, self.names[host])
    }

    /// Interface names have 15 bytes at most: the segment's tag and an index.
    fn veth_name(&self, n: usize) -> String {
        format!("pv{}v{n}", self.tag)
    }

    /// Where this process is on the segment.
    pub fn own_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], 1)
    }

    pub fn addr(&self, host: usize) -> Ipv4Addr {
        let last = u8::try_from(10 + host).expect("at most 245 hosts");
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], last)
    }

    /// The index of a host by name.
    pub fn host(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no test host {name}"))
    }

    /// A command that runs `program` inside a host's namespace.
    pub fn command(&self, host: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace(host), program]);
        cmd
    }

    /// Applies an nftables script inside a host's namespace.
    pub fn nft(&self, host: usize, script: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.namespace(host), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run nft (Debian's nftables package)");
        child
            .stdin
            .take()
            .expect("nft stdin")
            .write_all(script.as_bytes())
            .expect("write the nft script");
        let status = child.wait().expect("wait for nft");
        assert!(status.success(), "nft failed on:\n{script}");
    }

    /// Removes every fault rule of one host.
    pub fn heal(&self, host: usize) {
        self.nft(
            host,
            "flush chain inet pvfault out\nflush chain inet pvfault in\n",
        );
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // The veth pairs go with the namespaces that hold one of their ends; this
        // process's own end is removed at once, not when the kernel gets to it.
        let _ = quiet_ip(&["link", "del", &self.veth_name(0)]);
        for n in 0..self.names.len() {
            let _ = quiet_ip(&["netns", "del", &self.namespace(n)]);
        }
        let _ = quiet_ip(&["netns", "del", &self.switch()]);
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {} (test hosts need root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn quiet_ip(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("ip").args(args).output()
}

/// A 10.x.y.0/24 that no address or route of this machine is in.
fn free_subnet() -> [u8; 3] {
    let used = |args: &[&str]| {
        quiet_ip(args)
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let taken = format!(
        "{}\n{}",
        used(&["-4", "-o", "addr", "show"]),
        used(&["-4", "route", "show", "table", "all"])
    );
    let pid = std::process::id();
    for n in 0..200u32 {
        let second = 200 + ((pid + n) % 50) as u8;
        let third = ((pid / 50 + n * 7) % 250) as u8;
        let prefix = format!("10.{second}.{third}.");
        // Any 10.0.0.0/8 route wider than a /24 could hold it too: stay clear of those.
        let wide = taken.contains("10.0.0.0/8") || taken.contains(&format!("10.{second}.0.0/16"));
        if !taken.contains(&prefix) && !wide {
            return [10, second, third];
        }
    }
    panic!("no free 10.x.y.0/24 for the test hosts");
}

/// Removes the namespaces of runs whose process is gone.
fn remove_stale() {
    let Ok(out) = quiet_ip(&["netns", "list"]) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = quiet_ip(&["netns", "del", name]);
        }
    }
}
