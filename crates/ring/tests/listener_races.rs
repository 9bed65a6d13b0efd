//! Listeners racing for one socket path: exactly one wins, every other gets
//! `Error::AddressInUse`, and the winner is the one a connector reaches; with or without a
//! stale socket left at the path beforehand.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use tachyon_ring::{Bus, Error, Listener};

const RACERS: usize = 4;
const ROUNDS: usize = 300;

/// Starts [`RACERS`] threads at once, each binding `path` with `listen_many`.
fn race(path: &Path) -> Vec<tachyon_ring::Result<Listener>> {
    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let path = path.to_path_buf();
            std::thread::spawn(move || {
                barrier.wait();
                Bus::options().listen_many(&path, 4096)
            })
        })
        .collect();
    racers.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Asserts one winner and only `AddressInUse` losers, and that a connector reaches the
/// winner; returns once the winner is dropped (its socket file with it).
fn one_winner_reachable(path: &Path, outcomes: Vec<tachyon_ring::Result<Listener>>, round: usize) {
    let mut winners = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(listener) => winners.push(listener),
            Err(Error::AddressInUse { path: p }) => assert_eq!(p, path),
            Err(other) => panic!("round {round}: a loser failed otherwise: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
    let mut winner = winners.pop().unwrap();
    let connector = {
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            Bus::options()
                .connect_timeout(Duration::from_secs(10))
                .connect(&path)
        })
    };
    let served = winner.accept_timeout(Duration::from_secs(10));
    let connected = connector.join().unwrap();
    assert!(served.is_ok(), "round {round}: {:?}", served.err());
    assert!(connected.is_ok(), "round {round}: {:?}", connected.err());
    assert_eq!(winner.accepted(), 1);
    drop(winner);
    assert!(
        !path.exists(),
        "round {round}: the winner's socket file is left"
    );
}

#[test]
fn racing_listeners_on_a_free_path_leave_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raced.sock");
    for round in 0..ROUNDS {
        let outcomes = race(&path);
        one_winner_reachable(&path, outcomes, round);
    }
    // Nothing is left of any loser's staging directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn racing_listeners_over_a_stale_socket_leave_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    for round in 0..ROUNDS {
        // A socket file nobody listens on any more (std does not unlink it on drop).
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let outcomes = race(&path);
        one_winner_reachable(&path, outcomes, round);
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
