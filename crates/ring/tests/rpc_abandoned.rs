//! RPC calls a side gives up on: a caller that stopped waiting, a callee that dropped a
//! request unanswered. Neither may leave the other stuck or the bus poisoned.

use std::path::PathBuf;
use std::time::Duration;

use tachyon_ring::{Bus, Callee, Caller, ERROR_REPLY_TYPE, Error, RpcBus};

const LIMIT: Duration = Duration::from_secs(10);

/// A caller connected to a callee that `serve` runs in a thread.
fn pair(
    dir: &tempfile::TempDir,
    serve: impl FnOnce(Callee) -> tachyon_ring::Result<()> + Send + 'static,
) -> (Caller, std::thread::JoinHandle<tachyon_ring::Result<()>>) {
    let path: PathBuf = dir.path().join("rpc.sock");
    let callee = {
        let path = path.clone();
        std::thread::spawn(move || serve(RpcBus::listen(&path, 1 << 16, 1 << 16)?))
    };
    let caller = Bus::options()
        .connect_timeout(LIMIT)
        .rpc_connect(&path)
        .unwrap();
    (caller, callee)
}

#[test]
fn a_late_reply_to_an_abandoned_call_is_discarded_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut caller, callee) = pair(&dir, |mut callee| {
        let late = callee.serve_timeout(LIMIT)?;
        std::thread::sleep(Duration::from_millis(300));
        late.reply(1, b"late")?;
        let next = callee.serve_timeout(LIMIT)?;
        next.reply(2, b"on time")
    });
    let first = caller.call(1, b"slow").unwrap();
    assert!(matches!(
        caller.wait_timeout(first, Duration::from_millis(50)),
        Err(Error::Timeout(_))
    ));
    let second = caller.call(2, b"next").unwrap();
    let reply = caller.wait_timeout(second, LIMIT).unwrap();
    assert_eq!(
        (reply.correlation_id(), reply.data()),
        (second, &b"on time"[..])
    );
    drop(reply);
    callee.join().unwrap().unwrap();
}

#[test]
fn a_reply_to_a_call_never_made_is_still_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut caller, callee) = pair(&dir, |mut callee| {
        let request = callee.serve_timeout(LIMIT)?;
        let id = request.defer();
        callee.reply(id + 5, 1, b"wrong id")
    });
    let id = caller.call(1, b"x").unwrap();
    match caller.wait_timeout(id, LIMIT) {
        Err(Error::UnexpectedReply { expected, found }) => assert_eq!((expected, found), (1, 6)),
        other => panic!("{other:?}"),
    }
    callee.join().unwrap().unwrap();
}

#[test]
fn a_request_dropped_unanswered_gets_upstreams_error_reply() {
    let dir = tempfile::tempdir().unwrap();
    let (mut caller, callee) = pair(&dir, |mut callee| {
        // Dropped outright, as a `?` on the way to the reply would.
        drop(callee.serve_timeout(LIMIT)?);
        // Reserved in place, then rolled back (dropped uncommitted).
        let mut request = callee.serve_timeout(LIMIT)?;
        {
            let (_, _uncommitted) = request.reserve_reply(16, Duration::ZERO)?;
        }
        drop(request);
        // Answered: no error reply besides.
        callee.serve_timeout(LIMIT)?.reply(4, b"ok")
    });
    for msg_type in [7u16, 9] {
        let id = caller.call(msg_type, b"x").unwrap();
        let reply = caller.wait_timeout(id, LIMIT).unwrap();
        assert_eq!(reply.msg_type(), ERROR_REPLY_TYPE);
        assert_eq!(reply.data(), msg_type.to_be_bytes());
    }
    let id = caller.call(3, b"x").unwrap();
    let reply = caller.wait_timeout(id, LIMIT).unwrap();
    assert_eq!((reply.msg_type(), reply.data()), (4, &b"ok"[..]));
    drop(reply);
    callee.join().unwrap().unwrap();
}
