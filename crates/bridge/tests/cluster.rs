//! Proof 6: a three-node JetStream cluster on loopback with an R3 stream: `out` publishes to
//! node A, `in` fetches from node C, node B is SIGKILLed mid-stream and restarted: nothing
//! lost, nothing doubled, order kept.

mod support;

use std::time::{Duration, Instant};

use support::*;

const COUNT: u64 = 10_000;

fn cluster(dir: &std::path::Path) -> Vec<NatsServer> {
    let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let routes = route_ports
        .iter()
        .map(|port| format!("nats-route://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(", ");
    (0..3)
        .map(|node| {
            let name = ["a", "b", "c"][node];
            let config = dir.join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{}\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\ncluster {{\n  name: c3\n  listen: 127.0.0.1:{}\n  routes: [{routes}]\n}}\n",
                    client_ports[node],
                    dir.join(name).display(),
                    route_ports[node],
                ),
            )
            .expect("write a node's config");
            NatsServer::from_config(client_ports[node], config, dir.join(format!("{name}.log")))
        })
        .collect()
}

#[test]
fn an_r3_stream_survives_a_node_killed_and_restarted_mid_stream() {
    let dir = temp_dir();
    let mut nodes = cluster(dir.path());
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let started = Instant::now();
    let mut out_argv = out_args(&a, &nodes[0].url(), "C3", "c3");
    out_argv.extend(["--replicas".into(), "3".into()]);
    let mut in_argv = in_args(&b, &nodes[2].url(), "C3", "c3-in", "c3");
    in_argv.extend(["--replicas".into(), "3".into()]);
    let out = Bridge::start(dir.path(), "out", &strs(&out_argv));
    let inb = Bridge::start(dir.path(), "in", &strs(&in_argv));
    let (producer, _) = produce(a, COUNT, 0, Duration::from_secs(120));
    let (consumer, received) = consume(b, COUNT, 0, false, Duration::from_secs(240));

    wait_for_a_quarter(&received, COUNT, &out, &inb);
    nodes[1].kill();
    let at_kill = received.load(std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(5));
    nodes[1].restart();
    eprintln!("node b killed after {at_kill} received, back after 5 s");

    let received = join_both(producer, consumer, &out, &inb);
    assert_eq!(received.messages, COUNT);
    assert!(at_kill < COUNT, "the kill came after the end");
    assert_eq!(
        settled_stream_state(
            &nodes[0].url(),
            "C3",
            (COUNT, COUNT),
            Duration::from_secs(20)
        ),
        (COUNT, COUNT),
        "stored once each"
    );
    let (status, out_stats) = out.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{out_stats}");
    assert_eq!(out_stats["messages"], COUNT, "{out_stats}");
    let (status, in_stats) = inb.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{in_stats}");
    eprintln!(
        "in {:?}\nout: {out_stats}\nin: {in_stats}",
        started.elapsed()
    );
}
