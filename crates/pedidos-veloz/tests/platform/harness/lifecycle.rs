//! Each component's process or task: started (on its test host, if the platform has
//! them), waited for until live or ready, stopped gracefully, terminated while the
//! test watches it drain, or killed; and started again on the same address.

use std::time::Duration;

use pedidos_veloz::{build, ComponentKind};
use platform::server::{bind, serve};
use platform::shutdown::Shutdown;

use super::{Backend, Handle, Http, Mode, Platform};

impl Platform {
    /// Whose handle runs one replica: in `Mode::AllInOne`, the one process's.
    fn key(&self, service: ComponentKind, slot: usize) -> (ComponentKind, usize) {
        match self.mode {
            Mode::AllInOne => (ComponentKind::Gateway, 0),
            _ => (service, slot),
        }
    }

    /// Starts the binary with no subcommand (all four components) on the
    /// topology's ports and the platform's databases, and waits until it is live.
    pub(super) async fn spawn_all_in_one(&mut self) {
        let port = |kind| self.topology.addr(kind).port().to_string();
        let mut cmd = self.command(None, "all-in-one.log");
        cmd.env("GATEWAY_PORT", port(ComponentKind::Gateway))
            .env("PEDIDOS_PORT", port(ComponentKind::Pedidos))
            .env("PAGAMENTOS_PORT", port(ComponentKind::Pagamentos))
            .env("ESTOQUE_PORT", port(ComponentKind::Estoque))
            .env("INTERNAL_BIND_ADDRESS", "127.0.0.1");
        for (kind, setting) in [
            (ComponentKind::Estoque, "ESTOQUE_DATABASE_URL"),
            (ComponentKind::Pagamentos, "PAGAMENTOS_DATABASE_URL"),
            (ComponentKind::Pedidos, "PEDIDOS_DATABASE_URL"),
        ] {
            cmd.env(setting, self.database_url(kind));
        }
        let child = cmd.spawn().expect("spawn pedidos-veloz");
        self.handles
            .insert((ComponentKind::Gateway, 0), Handle::Process(child));
        self.wait_live(
            &self.service_url(ComponentKind::Gateway, "/livez"),
            "pedidos-veloz",
        )
        .await;
    }

    /// The binary, with the platform's environment, its output appended to `log`;
    /// on the test host of `replica` if the platform has them.
    fn command(&self, replica: Option<(ComponentKind, usize)>, log: &str) -> std::process::Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(log))
            .expect("log file");
        let binary = env!("CARGO_BIN_EXE_pedidos-veloz");
        let mut cmd = match (&self.network, replica) {
            (Some(network), Some((kind, slot))) => network.command(kind, slot, binary),
            _ => std::process::Command::new(binary),
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        cmd
    }

    async fn wait_live(&self, live: &str, what: &str) {
        for _ in 0..200 {
            if let Ok(Ok(r)) =
                tokio::time::timeout(Duration::from_millis(200), self.http.try_send("GET", live))
                    .await
            {
                if r == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what} did not come up; see its log");
    }

    pub(super) async fn run(
        &mut self,
        service: ComponentKind,
        slot: usize,
        listener: Option<tokio::net::TcpListener>,
    ) {
        if self.mode == Mode::AllInOne {
            drop(listener); // the one process binds every port itself
            if !self.handles.contains_key(&self.key(service, slot)) {
                self.spawn_all_in_one().await;
            }
            return;
        }
        if self.mode == Mode::Processes {
            drop(listener); // the child binds the port itself
            self.spawn(service, slot).await;
            return;
        }
        let listener = listener.expect("an in-process component needs its listener");
        let shutdown = Shutdown::new();
        let component = build(service, &self.config, &self.common, &self.topology)
            .await
            .unwrap_or_else(|e| panic!("build {}: {e:#}", service.name()));
        let task = tokio::spawn(serve(
            component,
            listener,
            shutdown.clone(),
            self.common.grace,
        ));
        self.handles
            .insert((service, slot), Handle::Task { shutdown, task });
    }

    /// Starts the real binary for one replica of a component and waits until it is live.
    async fn spawn(&mut self, service: ComponentKind, slot: usize) {
        let name = match slot {
            0 => format!("{}.log", service.command()),
            n => format!("{}-{n}.log", service.command()),
        };
        let mut cmd = self.command(Some((service, slot)), &name);
        cmd.arg(service.command())
            .env("PORT", self.replica_addr(service, slot).port().to_string())
            .env(
                "PEDIDOS_SERVICE_URL",
                self.urls(service, ComponentKind::Pedidos),
            )
            .env(
                "PAGAMENTOS_SERVICE_URL",
                self.urls(service, ComponentKind::Pagamentos),
            )
            .env(
                "ESTOQUE_SERVICE_URL",
                self.urls(service, ComponentKind::Estoque),
            )
            .envs(
                self.service_env
                    .get(&service)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k, v)),
            );
        if let Some(db) = self.config.database_url(service) {
            match &self.network {
                Some(network) if self.backend == Backend::Postgres => {
                    cmd.env("DATABASE_URL", network.database_url(db))
                }
                _ => cmd.env("DATABASE_URL", db),
            };
        }
        if self.network.is_some() {
            // Its own host: every address of it is the test's.
            cmd.env("BIND_ADDRESS", "0.0.0.0");
        }
        let child = cmd.spawn().expect("spawn pedidos-veloz");
        self.handles.insert((service, slot), Handle::Process(child));
        let live = self.replica_url(service, slot, "/livez");
        self.wait_live(&live, service.command()).await;
    }

    /// Waits until one replica answers `/readyz` 200 (its database reachable).
    pub async fn wait_ready(&self, service: ComponentKind, slot: usize) {
        let ready = self.replica_url(service, slot, "/readyz");
        for _ in 0..200 {
            let answer = tokio::time::timeout(
                Duration::from_millis(500),
                Http::new().try_send("GET", &ready),
            )
            .await;
            if matches!(answer, Ok(Ok(200))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} replica {slot} never became ready", service.name());
    }

    /// Graceful stop (SIGTERM for a process): drain, finish in-flight requests, close the pools.
    pub async fn stop(&mut self, service: ComponentKind) {
        match self.handles.remove(&self.key(service, 0)) {
            Some(Handle::Task { shutdown, task }) => {
                shutdown.trigger(Duration::ZERO);
                let _ = task.await;
            }
            Some(Handle::Process(mut child)) => {
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                let status = tokio::task::spawn_blocking(move || child.wait())
                    .await
                    .expect("join")
                    .expect("wait");
                assert!(
                    status.success(),
                    "{} exited with {status} after SIGTERM",
                    service.name()
                );
            }
            None => {}
        }
    }

    /// SIGTERM to a process, watching it go: returns whether `/readyz` answered 503
    /// before the listener closed, and the exit status and time. Process mode only.
    pub async fn terminate(&mut self, service: ComponentKind) -> Termination {
        self.terminate_replica(service, 0).await
    }

    /// [`Platform::terminate`] of one replica.
    pub async fn terminate_replica(&mut self, service: ComponentKind, slot: usize) -> Termination {
        let Some(Handle::Process(mut child)) = self.handles.remove(&self.key(service, slot)) else {
            panic!(
                "terminate() needs Mode::Processes and a running {}",
                service.name()
            );
        };
        let started = std::time::Instant::now();
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let ready = self.replica_url(service, slot, "/readyz");
        let mut saw_not_ready = false;
        let mut closed_after = None;
        // A fresh client per probe: a pooled connection would outlive the listener.
        while closed_after.is_none() && started.elapsed() < Duration::from_secs(60) {
            match tokio::time::timeout(
                Duration::from_millis(500),
                Http::new().try_send("GET", &ready),
            )
            .await
            {
                Ok(Ok(503)) => saw_not_ready = true,
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(_)) => closed_after = Some(started.elapsed()),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, exited_after) = tokio::task::spawn_blocking(move || {
            let status = child.wait().expect("wait");
            (status, started.elapsed())
        })
        .await
        .expect("join");
        Termination {
            saw_not_ready,
            closed_after,
            status,
            exited_after,
        }
    }

    /// A crash: SIGKILL. Only in process mode: in-process tasks cannot be killed mid-flight.
    pub async fn crash(&mut self, service: ComponentKind) {
        self.crash_replica(service, 0).await;
    }

    /// [`Platform::crash`] of one replica.
    pub async fn crash_replica(&mut self, service: ComponentKind, slot: usize) {
        let key = self.key(service, slot);
        match self.handles.remove(&key) {
            Some(Handle::Process(mut child)) => {
                let _ = child.kill();
                let _ = tokio::task::spawn_blocking(move || child.wait()).await;
            }
            Some(other) => {
                self.handles.insert(key, other);
                panic!("crash() needs Mode::Processes");
            }
            None => {}
        }
    }

    /// Starts a stopped component again on the same port.
    pub async fn restart(&mut self, service: ComponentKind) {
        // Connections pooled to the old process are dead: start with fresh ones.
        self.http = Http::new();
        self.start_replica(service, 0).await;
    }

    /// Starts one replica (a stopped one, or a spare: scale out) on its port and
    /// waits until it is live; [`Platform::wait_ready`] waits for its readiness.
    pub async fn start_replica(&mut self, service: ComponentKind, slot: usize) {
        if self.network.is_some() {
            // Its address is on its own host: nothing of this machine to wait for.
            self.run(service, slot, None).await;
            return;
        }
        let addr = self.replica_addr(service, slot);
        let mut tries = 0;
        let listener = loop {
            match bind(addr).await {
                Ok(listener) => break listener,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("rebind {addr}: {err}"),
            }
        };
        self.run(service, slot, Some(listener)).await;
    }

    /// The process id of one replica, if it runs as a process of its own.
    pub fn pid(&self, service: ComponentKind, slot: usize) -> Option<u32> {
        match self.handles.get(&self.key(service, slot)) {
            Some(Handle::Process(child)) => Some(child.id()),
            _ => None,
        }
    }
}

/// How a process went down after SIGTERM.
#[derive(Debug)]
pub struct Termination {
    /// `/readyz` answered 503 at least once before the listener closed.
    pub saw_not_ready: bool,
    /// When the listener stopped accepting, after the signal.
    pub closed_after: Option<Duration>,
    pub status: std::process::ExitStatus,
    /// When the process exited, after the signal.
    pub exited_after: Duration,
}
