//! Benchmark: the daemon's Kubernetes sources at scale, against the in-process fake API server
//! (tests/support/fake_apiserver.rs): 1,000 watched bot pods, `max_log_streams = 200` (so 200
//! concurrent log streams and 800 waiting), 100 log lines/s in total spread over the streamed
//! pods. The daemon runs as its own process (the release binary); its CPU time and memory come
//! from /proc, so the fake server's own work is not counted.
//!
//! `cargo bench --bench kube_scale [-- SECONDS [PODS [STREAMS [LINES_PER_SEC]]]]`
//! (defaults 60, 1000, 200, 100). Prints a Markdown report.

#[path = "../tests/it/support/fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use fake_apiserver::{FakeApiServer, PodBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_discord-gateway-exporter");
const NS: &str = "bots";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// (utime + stime) in seconds.
fn cpu_secs(pid: u32, tck: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (ut + st) / tck
}

/// VmRSS and VmHWM in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn main() {
    let secs = arg(1, 60);
    let pods = arg(2, 1000) as usize;
    let streams = arg(3, 200) as usize;
    let rate = arg(4, 100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeApiServer::start());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);

    let start = Utc::now() - TimeDelta::minutes(30);
    let mut history = Vec::new();
    for i in 0..pods {
        let name = format!("bot{:04}-6c9f7d8b4-p{:04}", i, i);
        let mut p = PodBuilder::new(NS, &name, &format!("uid-{i}"), "bot", start)
            .label("app.kubernetes.io/name", &format!("bot{:04}", i))
            .label("app.kubernetes.io/component", "discord-bot")
            .owner(&format!("bot{:04}-6c9f7d8b4", i));
        p.running = Some((format!("containerd://{i}"), start, 0));
        p.ready_since = Some(start + TimeDelta::seconds(5));
        fake.put_pod(p.json());
        history.push((
            name.clone(),
            start + TimeDelta::seconds(2),
            "INFO openab: discord bot running".to_owned(),
        ));
        history.push((
            name,
            start + TimeDelta::seconds(3),
            format!(
                "INFO openab::discord: discord bot connected user=Bot{:04}",
                i % 100
            ),
        ));
    }
    let hist: Vec<(&str, &str, &str, _, String)> = history
        .iter()
        .map(|(n, t, l)| (NS, n.as_str(), "bot", *t, l.clone()))
        .collect();
    fake.log_many(&hist);

    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "profile = \"openab\"\n[kubernetes]\nnamespaces = [\"{NS}\"]\n\
             label_selector = \"app.kubernetes.io/component=discord-bot\"\n\
             max_log_streams = {streams}\nreadback_lines = 100\n\
             [kubernetes.attribution]\nlabel = \"app.kubernetes.io/name\"\n"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .args(["--listen", &addr])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the exporter");
    let pid = child.id();
    let _guard = Killed(child);
    let tck = clk_tck();

    let t0 = Instant::now();
    loop {
        let m = get(&addr, "/metrics");
        let active = metric(
            &m,
            "discord_gateway_exporter_kubernetes_log_streams{",
            "active",
        );
        if active as usize >= streams.min(pods) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "streams not open after 2 min: {active}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let startup = t0.elapsed();
    let (rss_start, _) = memory(pid);
    // Settle, then measure.
    std::thread::sleep(Duration::from_secs(5));
    let streamed = fake.streaming_pods();
    let lines_before = metric(
        &get(&addr, "/metrics"),
        "discord_gateway_exporter_log_lines_total{",
        "kubernetes:logs",
    );
    let cpu0 = cpu_secs(pid, tck);
    let m0 = Instant::now();
    let mut written = 0u64;
    let mut next = Instant::now();
    let mut k = 0usize;
    let mut peak_rss = 0f64;
    let tick = Duration::from_millis(100);
    let per_tick = (rate / 10).max(1);
    while m0.elapsed() < Duration::from_secs(secs) {
        let now = Utc::now();
        let mut batch = Vec::new();
        for _ in 0..per_tick {
            let (ns, pod) = &streamed[k % streamed.len()];
            k += 1;
            written += 1;
            batch.push((
                ns.as_str(),
                pod.as_str(),
                "bot",
                now,
                format!(
                    "INFO dispatch{{channel={written} adapter=\"discord\"}}: openab::dispatch: \
                     batch dispatched thread_key=discord:{written} events_per_dispatch=1"
                ),
            ));
        }
        fake.log_many(&batch);
        peak_rss = peak_rss.max(memory(pid).0);
        next += tick;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let elapsed = m0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid, tck) - cpu0;
    std::thread::sleep(Duration::from_secs(2));
    let m = get(&addr, "/metrics");
    let lines_after = metric(
        &m,
        "discord_gateway_exporter_log_lines_total{",
        "kubernetes:logs",
    );
    let waiting = metric(
        &m,
        "discord_gateway_exporter_kubernetes_log_streams{",
        "waiting",
    );
    let watched = metric(&m, "discord_gateway_exporter_kubernetes_pods ", "");
    let (rss_end, hwm) = memory(pid);
    let (open_watches, open_logs) = fake.open();

    println!("## kube_scale: {pods} pods, max_log_streams = {streams}, {rate} lines/s");
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| pods watched (`kubernetes_pods`) | {watched} |");
    println!("| log streams open at the server / waiting for a slot | {open_logs} / {waiting} |");
    println!("| watch connections open | {open_watches} |");
    println!(
        "| start to all streams open | {:.1} s |",
        startup.as_secs_f64()
    );
    println!(
        "| lines written / counted by the exporter | {written} / {} |",
        lines_after - lines_before
    );
    println!(
        "| CPU at {rate} lines/s | {:.2} % of one core ({cpu:.2} s over {elapsed:.0} s) |",
        100.0 * cpu / elapsed
    );
    println!(
        "| RSS after start / during / end | {rss_start:.1} / {peak_rss:.1} / {rss_end:.1} MiB |"
    );
    println!("| peak RSS (VmHWM, includes the read-back) | {hwm:.1} MiB |");
}
