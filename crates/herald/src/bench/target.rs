//! The server under test: one the bench starts (`herald serve` processes of this very
//! binary, on a temporary SQLite database or a given PostgreSQL), or one it is pointed at.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

/// Herald nodes started by the bench; killed when dropped.
pub struct Started {
    nodes: Vec<Child>,
    _dir: Option<tempfile::TempDir>,
}

/// Where to send API calls, and how to watch the server's resources.
pub struct Target {
    /// `http://host:port` of each node.
    pub bases: Vec<String>,
    pub token: String,
    /// The processes whose memory and CPU time are reported.
    pub pids: Vec<u32>,
    /// The nodes the bench started, stopped when the target is dropped.
    _started: Option<Started>,
}

impl Target {
    /// A server the bench does not own.
    pub fn external(url: &str, token: &str, pid: Option<u32>) -> Self {
        Self {
            bases: vec![url
                .trim_end_matches('/')
                .trim_end_matches("/api/v1")
                .to_owned()],
            token: token.to_owned(),
            pids: pid.into_iter().collect(),
            _started: None,
        }
    }

    /// `nodes` Herald processes on one database: a temporary SQLite file (one node only)
    /// or `database_url`.
    pub fn start(nodes: u32, database_url: Option<&str>) -> anyhow::Result<Self> {
        if nodes > 1 && database_url.is_none() {
            anyhow::bail!(
                "more than one node needs a shared database: give --database-url postgres://…"
            );
        }
        let token = format!("bench_{}", herald_core::ids::IdKind::Token.new_id());
        let dir = tempfile::tempdir()?;
        let exe = std::env::current_exe().context("finding the herald binary")?;
        let mut children = Vec::new();
        let mut bases = Vec::new();
        for _ in 0..nodes.max(1) {
            let mut command = Command::new(&exe);
            command
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--allow-network",
                    "127.0.0.0/8",
                ])
                .arg("--data-dir")
                .arg(dir.path())
                .env("HERALD_ADMIN_TOKEN", &token)
                .env("HERALD_LOG", "warn,herald_server::server=info")
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if let Some(url) = database_url {
                command.args(["--database-url", url]);
            }
            let mut child = command.spawn().context("starting herald serve")?;
            bases.push(format!("http://{}", listening_address(&mut child)?));
            children.push(child);
        }
        Ok(Self {
            bases,
            token,
            pids: children.iter().map(Child::id).collect(),
            _started: Some(Started {
                nodes: children,
                _dir: Some(dir),
            }),
        })
    }
}

/// Reads a starting node's log until it names its address; then keeps draining it.
fn listening_address(child: &mut Child) -> anyhow::Result<String> {
    let stderr = child.stderr.take().context("piped stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("api=http://").nth(1) {
                let _ = tx.send(rest.chars().take_while(|c| *c != '/').collect::<String>());
            } else if line.contains("ERROR") {
                eprintln!("herald: {line}");
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .context("herald serve did not start within a minute")
}

impl Drop for Started {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

/// A process's memory and CPU time, read from `/proc` (Linux).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    pub rss_mib: f64,
    /// The part of the RSS the process allocated itself (`RssAnon`): the rest is files
    /// mapped in, mostly the executable's code, shared with the page cache and counted
    /// whole however little of it is used.
    pub anon_mib: f64,
    pub peak_rss_mib: f64,
    pub cpu_seconds: f64,
}

/// The summed usage of `pids`, or `None` where `/proc` cannot tell.
pub fn usage(pids: &[u32]) -> Option<Usage> {
    let mut total = Usage::default();
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024.0)
        };
        total.rss_mib += field("VmRSS:")?;
        total.anon_mib += field("RssAnon:")?;
        total.peak_rss_mib += field("VmHWM:")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces): utime is the 14th field
        // of the line, stime the 15th, in clock ticks (USER_HZ, 100 on Linux).
        let after_name = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        total.cpu_seconds += ticks / 100.0;
    }
    Some(total)
}
