//! Keeps `tidings bench` working: a few-second smoke run of every scenario. No timing
//! assertions: only that each scenario ran and delivered everything it accepted.

use std::process::Command;

/// Runs `tidings bench` with `args`; its standard output, once it succeeded.
fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("bench")
        .args(args)
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "bench failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_bench_smoke_run_prints_every_scenario() {
    let stdout = bench(&["--quick"]);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "baseline",
            "fanout1",
            "fanout10",
            "latency",
            "backlog",
            "many-webhooks"
        ]
    );
    for l in &lines {
        if l.get("delivered_equals_accepted").is_some() {
            assert_eq!(l["delivered_equals_accepted"], true, "{l}");
        }
    }
    // The disk's flush time beside the network's limit (0 where the temporary directory is a
    // tmpfs: a flush there costs less than the microsecond it is counted in).
    let (sync_p50, sync_p99) = (
        lines[0]["disk_fsync_p50_ms"].as_f64().unwrap(),
        lines[0]["disk_fsync_p99_ms"].as_f64().unwrap(),
    );
    assert!(0.0 <= sync_p50 && sync_p50 <= sync_p99, "{}", lines[0]);
    assert_eq!(lines[4]["drained_all"], true);
    assert_eq!(lines[3]["events"], lines[3]["delivered"]);
    // fanout1 ran before, so many-webhooks compares its publish latency with it.
    assert!(
        lines[5]["p50_vs_fanout1"].as_f64().unwrap() > 0.0,
        "{}",
        lines[5]
    );
    assert!(
        lines[5]["p99_vs_fanout1"].as_f64().unwrap() > 0.0,
        "{}",
        lines[5]
    );
    // At the steady rate too, compared with `latency`'s publishes (one webhook).
    for field in ["publish_p50_ms", "publish_p99_ms"] {
        assert!(lines[3][field].as_f64().unwrap() > 0.0, "{}", lines[3]);
    }
    for field in ["rate_p50_vs_latency", "rate_p99_vs_latency"] {
        assert!(lines[5][field].as_f64().unwrap() > 0.0, "{}", lines[5]);
    }
    // The side-by-side comparison with one webhook: both sides published in their slices, and
    // the ratios are of those figures.
    let m = &lines[5];
    assert!(m["slices"].as_u64().unwrap() >= 1, "{m}");
    for side in ["events_accepted", "one_webhook_events_accepted"] {
        assert!(m[side].as_u64().unwrap() > 0, "{m}");
    }
    for (ratio, many, one) in [
        (
            "p50_vs_one_webhook",
            "publish_p50_ms",
            "one_webhook_publish_p50_ms",
        ),
        (
            "p99_vs_one_webhook",
            "publish_p99_ms",
            "one_webhook_publish_p99_ms",
        ),
        (
            "rate_p50_vs_one_webhook",
            "rate_publish_p50_ms",
            "one_webhook_rate_publish_p50_ms",
        ),
        (
            "rate_p99_vs_one_webhook",
            "rate_publish_p99_ms",
            "one_webhook_rate_publish_p99_ms",
        ),
    ] {
        let expected = m[many].as_f64().unwrap() / m[one].as_f64().unwrap();
        assert!(
            (m[ratio].as_f64().unwrap() - expected).abs() < 0.001,
            "{ratio}: {m}"
        );
    }
    assert!(
        m["cpu_per_event_vs_one_webhook"].as_f64().unwrap() > 0.0,
        "{m}"
    );
    // The CPU of the load alone (the setup's 10,000 webhooks excluded), and the writer's share.
    let load_cpu = lines[5]["load_cpu_seconds"].as_f64().unwrap();
    let writer_cpu = lines[5]["writer_cpu_seconds"].as_f64().unwrap();
    assert!(load_cpu > 0.0, "{}", lines[5]);
    assert!(
        load_cpu < lines[5]["cpu_seconds"].as_f64().unwrap(),
        "{}",
        lines[5]
    );
    assert!(writer_cpu <= load_cpu, "{}", lines[5]);
}

/// `soak` in a few seconds: it samples the server over time and reports each series with
/// whether it stayed bounded.
#[test]
fn a_short_soak_reports_memory_store_size_and_queue_depth_over_time() {
    let stdout = bench(&["--quick", "--scenarios", "soak", "--duration", "3s"]);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["scenario"], "soak");
    assert!(line["events"].as_u64().unwrap() > 0, "{line}");
    assert!(line["samples"].as_array().unwrap().len() >= 2, "{line}");
    for series in ["rss_mb", "store_mb", "queue_depth"] {
        assert!(line[series]["max"].as_f64().is_some(), "{series}: {line}");
        assert!(line[series]["bounded"].is_boolean(), "{series}: {line}");
    }
    assert!(line["bounded"].is_boolean(), "{line}");
}
