//! Opening the bus end of either direction, through `tachyon-ring`'s public API.

use tachyon_ring::{Bus, CancelToken};

use crate::cli::BusArgs;

/// Listens (creating the ring) or connects, as the arguments say; the token ends the wait.
pub fn open(args: &BusArgs, cancel: CancelToken) -> tachyon_ring::Result<Bus> {
    let options = Bus::options()
        .cancel_token(cancel)
        .connect_timeout(args.connect_timeout);
    let bus = if args.listen {
        tracing::info!(socket = %args.socket.display(), capacity = args.capacity, "listening for the bus peer");
        options.listen(&args.socket, args.capacity)?
    } else {
        options.connect(&args.socket)?
    };
    if let Some(peer) = bus.peer_credentials() {
        tracing::info!(pid = peer.pid, uid = peer.uid, "bus peer connected");
    }
    Ok(bus)
}
