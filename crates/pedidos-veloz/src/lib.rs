//! The binary that ties the components together: its command line ([`cli`]) and its
//! start-up ([`startup`]): each service's database opened, the components built and
//! served, one per process or all four in one. `main.rs` only reads the command line
//! and runs what it asks.

pub mod cli;
pub mod startup;

pub use startup::{
    build, listen, open_db, public_api, serve_all, start_all, url, AllInOne, Common, ComponentKind,
    Running, Topology,
};
