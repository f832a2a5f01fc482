//! Fixtures for destinations that are real servers on this machine (brokers, SMTP): where
//! to find them, and a TCP proxy that can cut the way to them to stage an outage.
//!
//! Each suite runs when its variable is set (`.ci/run` sets them all). Without it a test
//! says loudly that it did not run; in CI (`CI` set) a missing variable fails the test, so
//! the suite can never pass by running nothing.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use herald_server::config::Config;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub use herald_store_postgres::testing::service_variable as service;

/// Settings for outage tests: quick retries, no circuit breaker to wait out, short
/// attempts.
pub fn quick_retries(config: &mut Config) {
    config.delivery.retry_schedule = vec![Duration::from_millis(200).into(); 20];
    config.delivery.jitter = 0.0;
    config.delivery.circuit_breaker_failures = 0;
    config.delivery.timeout = Duration::from_secs(3);
    config.delivery.connect_timeout = Duration::from_secs(2);
}

/// A unique name for this test's stream, queue or subject.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        herald_core::ids::IdKind::Task.new_id().to_lowercase()
    )
}

/// A TCP proxy on a port of its own to `upstream`, which a test can stop (refusing new
/// connections and cutting open ones) and start again on the same port.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    running: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    /// A running proxy to the first address of `host:port`.
    pub async fn start(host_port: &str) -> Self {
        let upstream = tokio::net::lookup_host(host_port)
            .await
            .expect("resolve the service")
            .next()
            .expect("an address");
        let listener = listen("127.0.0.1:0".parse().unwrap());
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            running: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.running.lock().unwrap() = Some(task);
    }

    /// Cuts every connection and refuses new ones: the service is down, as far as Herald
    /// can tell.
    pub async fn stop(&self) {
        let task = self.running.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub fn resume(&self) {
        self.serve(listen(self.addr));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.running.lock().unwrap().take() {
            task.abort();
        }
    }
}

fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    // The port was ours a moment ago; connections cut then may linger in TIME_WAIT.
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).expect("bind the proxy port");
    socket.listen(128).unwrap()
}
