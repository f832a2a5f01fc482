//! `herald bench`: measures a Svix-compatible server through its public API, end to end,
//! from publish to arrival at receivers the bench runs itself.
//!
//! Without `--target` it starts Herald itself (this binary's `herald serve`, on a
//! temporary SQLite database or the given PostgreSQL, one or more nodes), so that the
//! server's memory and CPU time can be reported apart from the bench's own.

mod baseline;
mod load;
mod receiver;
mod target;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use self::load::{Api, Pace, Pattern, Workload};
use self::receiver::Receivers;
use self::target::{usage, Target, Usage};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A running server to measure (its base URL); without it the bench starts Herald.
    #[arg(long, value_name = "URL", requires = "token")]
    target: Option<String>,
    /// The API token for `--target`.
    #[arg(long)]
    token: Option<String>,
    /// The PID of the `--target` server, to report its memory and CPU time.
    #[arg(long)]
    pid: Option<u32>,
    /// PostgreSQL for the Herald the bench starts (default: a temporary SQLite file).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Herald nodes to start on the one database (needs --database-url for more than 1).
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// What is sent: messages published, inbound deliveries to a source (verified and
    /// published on), or synchronous calls (timed to their answer).
    #[arg(long, value_enum, default_value = "publish")]
    pattern: Pattern,
    /// Messages to publish (requests to send, for the other patterns).
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Endpoints per application.
    #[arg(long, default_value_t = 1)]
    endpoints: u32,
    /// Applications; messages are spread over them.
    #[arg(long, default_value_t = 1)]
    apps: u32,
    /// Give every endpoint a payload filter that each message meets (`--pattern publish`),
    /// to measure what filters cost.
    #[arg(long)]
    payload_filter: bool,
    /// Concurrent publishers, publishing as fast as they can.
    #[arg(long, default_value_t = 50)]
    concurrency: u32,
    /// Publish at this fixed rate (messages a second) instead of as fast as possible.
    #[arg(long)]
    rate: Option<u32>,
    /// How many endpoints of each application answer slowly (the isolation scenario).
    #[arg(long, default_value_t = 0)]
    slow_endpoints: u32,
    /// How long slow endpoints take to answer.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    slow_delay: Duration,
    /// Give up waiting for deliveries after this long.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Also measure the machine's ceilings: plain POSTs, and database commits.
    #[arg(long)]
    baseline: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub messages: u64,
    pub endpoints_per_app: u32,
    pub apps: u32,
    pub nodes: u32,
    pub accepted: u64,
    pub refused: u64,
    pub publishes_per_second: f64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub deliveries_per_second: f64,
    pub lost: u64,
    pub duplicates: u64,
    /// Publish → arrival, over every delivery to an endpoint that is not slow.
    pub latency: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_endpoint_latency: Option<Latency>,
    /// Synchronous calls: request → answer (the bench's receiver answers at once, so this
    /// is Herald's overhead plus two loopback round trips).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_latency: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_idle: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_after: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_seconds_during_run: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<baseline::Ceilings>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let receivers = Receivers::start(args.endpoints, args.slow_endpoints, args.slow_delay).await?;
    let target = match &args.target {
        Some(url) => Target::external(url, args.token.as_deref().unwrap_or_default(), args.pid),
        None => Target::start(args.nodes, args.database_url.as_deref())?,
    };
    let api = Api::new(&target)?;
    let workload = Workload::setup(
        args.pattern,
        &api,
        &receivers,
        (args.apps.max(1), args.endpoints.max(1)),
        args.payload_filter,
    )
    .await
    .context("setting up applications and endpoints")?;
    let idle = usage(&target.pids);

    let expected = args.messages * receiving_endpoints(&args);
    let progress = progress_bar(args.json, expected);
    let pace = match args.rate {
        Some(per_second) => Pace::Rate { per_second },
        None => Pace::Saturate {
            concurrency: args.concurrency,
        },
    };
    let mut arrived = receivers.count();
    let watcher = tokio::spawn(follow(progress.clone(), arrived.clone()));
    progress.set_message("publishing");
    let published = load::publish(&api, &workload, args.messages, pace).await;
    progress.set_message("delivering");
    let accepted = published.sent.iter().filter(|s| s.is_some()).count() as u64;
    let wanted = accepted * receiving_endpoints(&args);
    let _ = tokio::time::timeout(args.timeout, arrived.wait_for(|n| *n >= wanted)).await;
    progress.finish_and_clear();
    watcher.abort();
    let after = usage(&target.pids);

    let baseline = match args.baseline {
        true => Some(
            baseline::measure(
                &receivers.base,
                args.concurrency,
                args.database_url.as_deref(),
            )
            .await?,
        ),
        false => None,
    };
    let report = summarize(
        &args, &receivers, &published, accepted, idle, after, baseline,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    drop(target);
    Ok(())
}

/// Moves the bar as deliveries arrive.
async fn follow(progress: ProgressBar, mut arrived: tokio::sync::watch::Receiver<u64>) {
    while arrived.changed().await.is_ok() {
        progress.set_position(*arrived.borrow());
    }
}

/// The bar that shows deliveries arriving (hidden when the report is JSON).
fn progress_bar(json: bool, expected: u64) -> ProgressBar {
    let progress = match json {
        true => ProgressBar::hidden(),
        false => ProgressBar::new(expected),
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:>10} [{bar:40}] {pos}/{len} deliveries ({per_sec}, {elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    progress
}

fn summarize(
    args: &BenchArgs,
    receivers: &Receivers,
    published: &load::Published,
    accepted: u64,
    idle: Option<Usage>,
    after: Option<Usage>,
    baseline: Option<baseline::Ceilings>,
) -> Report {
    let arrivals = receivers.arrivals();
    let mut seen: HashMap<(u32, u64), u32> = HashMap::new();
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    let mut last = published.started;
    for a in &arrivals {
        let count = seen.entry((a.endpoint, a.n)).or_default();
        *count += 1;
        if *count > 1 {
            continue;
        }
        last = last.max(a.at);
        if let Some(Some(sent)) = published.sent.get(a.n as usize) {
            let ms = a.at.saturating_duration_since(*sent).as_secs_f64() * 1000.0;
            if receivers.is_slow(a.endpoint) {
                slow.push(ms);
            } else {
                fast.push(ms);
            }
        }
    }
    let delivered = seen.len() as u64;
    let duplicates = arrivals.len() as u64 - delivered;
    let expected = accepted * receiving_endpoints(args);
    let publish_secs = published
        .finished
        .duration_since(published.started)
        .as_secs_f64();
    let deliver_secs = last.duration_since(published.started).as_secs_f64();
    let per_second = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    Report {
        scenario: scenario(args),
        messages: args.messages,
        endpoints_per_app: args.endpoints,
        apps: args.apps,
        nodes: args.nodes,
        accepted,
        refused: published.refused,
        publishes_per_second: per_second(accepted, publish_secs),
        expected_deliveries: expected,
        delivered,
        deliveries_per_second: per_second(delivered, deliver_secs),
        lost: expected.saturating_sub(delivered),
        duplicates,
        latency: percentiles(&mut fast),
        slow_endpoint_latency: (!slow.is_empty()).then(|| percentiles(&mut slow)),
        call_latency: (!published.answers_ms.is_empty())
            .then(|| percentiles(&mut published.answers_ms.clone())),
        server_cpu_seconds_during_run: idle.zip(after).map(|(i, a)| a.cpu_seconds - i.cpu_seconds),
        server_idle: idle,
        server_after: after,
        baseline,
    }
}

/// How many endpoints receive each request: a call (`mode: first`) asks one.
fn receiving_endpoints(args: &BenchArgs) -> u64 {
    match args.pattern {
        Pattern::Call => 1,
        Pattern::Publish | Pattern::Ingest => u64::from(args.endpoints.max(1)),
    }
}

fn scenario(args: &BenchArgs) -> String {
    let store = match (&args.target, &args.database_url) {
        (Some(url), _) => format!("target {url}"),
        (None, Some(_)) => "PostgreSQL".to_owned(),
        (None, None) => "SQLite".to_owned(),
    };
    let pace = match args.rate {
        Some(r) => format!("{r} msg/s"),
        None => format!("saturating, {} publishers", args.concurrency),
    };
    let mut slow = if args.slow_endpoints > 0 {
        format!(", {} slow ({:?})", args.slow_endpoints, args.slow_delay)
    } else {
        String::new()
    };
    if args.payload_filter {
        slow.push_str(", each filtering the payload");
    }
    let pattern = match args.pattern {
        Pattern::Publish => "",
        Pattern::Ingest => "inbound GitHub deliveries, ",
        Pattern::Call => "synchronous calls, ",
    };
    format!(
        "{pattern}{store}, {} node(s), {} app(s) × {} endpoint(s){slow}, {pace}",
        args.nodes, args.apps, args.endpoints
    )
}

/// Percentiles by rank over the sorted samples.
fn percentiles(samples: &mut [f64]) -> Latency {
    if samples.is_empty() {
        return Latency::default();
    }
    samples.sort_by(f64::total_cmp);
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    Latency {
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: samples[samples.len() - 1],
    }
}

fn print_report(r: &Report) {
    println!("scenario      {}", r.scenario);
    println!(
        "published     {} accepted, {} refused, {:.0}/s",
        r.accepted, r.refused, r.publishes_per_second
    );
    println!(
        "delivered     {} of {} ({} lost, {} duplicates), {:.0}/s end to end",
        r.delivered, r.expected_deliveries, r.lost, r.duplicates, r.deliveries_per_second
    );
    let l = &r.latency;
    println!(
        "latency       p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (publish → arrival)",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
    );
    if let Some(l) = &r.call_latency {
        println!(
            "calls         p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (request → answer)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        );
    }
    if let Some(l) = &r.slow_endpoint_latency {
        println!(
            "slow ones     p50 {:.1} ms, p99 {:.1} ms",
            l.p50_ms, l.p99_ms
        );
    }
    if let (Some(idle), Some(after)) = (r.server_idle, r.server_after) {
        println!(
            "server        RSS idle {:.1} MiB ({:.1} MiB allocated), after {:.1} MiB ({:.1}), peak {:.1} MiB; CPU {:.1} s during the run",
            idle.rss_mib,
            idle.anon_mib,
            after.rss_mib,
            after.anon_mib,
            after.peak_rss_mib,
            after.cpu_seconds - idle.cpu_seconds
        );
    }
    if let Some(b) = &r.baseline {
        println!(
            "ceilings      {:.0} plain POSTs/s ({:.0} % used), SQLite {:.0} commits/s ({:.0} rows/s batched){}",
            b.http_posts_per_second,
            100.0 * r.deliveries_per_second / b.http_posts_per_second.max(1.0),
            b.sqlite_commits_per_second,
            b.sqlite_rows_per_second_batched,
            b.postgres_commits_per_second
                .map(|p| format!(", PostgreSQL {p:.0} commits/s"))
                .unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_taken_by_rank() {
        let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = percentiles(&mut samples);
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(percentiles(&mut []).max_ms, 0.0);
    }
}
