//! Python exceptions: upstream's two (`TachyonError`, `PeerDeadError`) and a subclass per kind
//! of [`tachyon_ring::Error`] that upstream folds into them, so code written for upstream
//! catches everything it caught before.
//!
//! ```text
//! TachyonError
//! ├── FullError               ring full (upstream: TachyonError "bus closed or full")
//! ├── MessageTooLargeError    a message that can never fit this ring
//! ├── WaitTimeoutError        a `timeout=` given to a waiting call ran out
//! └── PeerDeadError           (upstream) the ring is unusable
//!     ├── CorruptError        a slot header or cursor the format forbids; wrong RPC reply id
//!     └── PeerGoneError       the peer process exited (everything it sent was delivered)
//! ```
//! Handshake failures raise `ConnectionError`, bad arguments `ValueError`, system-call
//! failures `OSError`, as upstream.

use pyo3::create_exception;
use pyo3::exceptions::{
    PyConnectionError, PyException, PyInterruptedError, PyOSError, PyValueError,
};
use pyo3::prelude::*;
use tachyon_ring::Error;

create_exception!(
    tachyon_rs,
    TachyonError,
    PyException,
    "Base class of every tachyon_rs error."
);
create_exception!(
    tachyon_rs,
    PeerDeadError,
    TachyonError,
    "The ring cannot be used any more: the peer died or broke the protocol."
);
create_exception!(
    tachyon_rs,
    PeerGoneError,
    PeerDeadError,
    "The peer process exited; every message it had published was delivered first."
);
create_exception!(
    tachyon_rs,
    CorruptError,
    PeerDeadError,
    "The ring's shared state broke the format (or an RPC reply answered another call)."
);
create_exception!(
    tachyon_rs,
    FullError,
    TachyonError,
    "The ring has no room for the message now (pass timeout= to wait for room)."
);
create_exception!(
    tachyon_rs,
    MessageTooLargeError,
    TachyonError,
    "The message can never fit this ring, whatever the consumer does."
);
create_exception!(
    tachyon_rs,
    WaitTimeoutError,
    TachyonError,
    "A waiting call reached the timeout= it was given."
);

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TachyonError", py.get_type::<TachyonError>())?;
    m.add("PeerDeadError", py.get_type::<PeerDeadError>())?;
    m.add("PeerGoneError", py.get_type::<PeerGoneError>())?;
    m.add("CorruptError", py.get_type::<CorruptError>())?;
    m.add("FullError", py.get_type::<FullError>())?;
    m.add(
        "MessageTooLargeError",
        py.get_type::<MessageTooLargeError>(),
    )?;
    m.add("WaitTimeoutError", py.get_type::<WaitTimeoutError>())?;
    Ok(())
}

/// The Python exception for a crate error, its message the crate's (which names the cause).
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::NobodyListening { .. } | Error::AbiMismatch { .. } | Error::Handshake(_) => {
            PyConnectionError::new_err(message)
        }
        Error::InvalidCapacity { .. } | Error::CommitTooLong { .. } | Error::ZeroCorrelationId => {
            PyValueError::new_err(message)
        }
        Error::MessageTooLarge { .. } | Error::CannotPlace { .. } => {
            MessageTooLargeError::new_err(message)
        }
        Error::Full { .. } => FullError::new_err(message),
        Error::Timeout(_) => WaitTimeoutError::new_err(message),
        Error::Corrupt(_) | Error::UnexpectedReply { .. } => CorruptError::new_err(message),
        Error::PeerGone { .. } => PeerGoneError::new_err(message),
        Error::Cancelled(_) => PyInterruptedError::new_err(message),
        Error::Os { .. } => PyOSError::new_err(message),
        _ => TachyonError::new_err(message),
    }
}
