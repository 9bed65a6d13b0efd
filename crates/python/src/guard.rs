//! [`Lent`]: what every guard shares (`TxGuard`, `RxGuard`, `RxBatchGuard`, `RpcTxGuard`,
//! `RpcRxGuard`): the private buffer it lends, the count of live buffer exports, and whether its
//! `with` block has ended.
//!
//! The rules live here once: no export after the block ends, and leaving the block with a
//! memoryview still alive is refused (the view would outlive the message it shows). Each guard
//! keeps its own error messages, as the Python API has them.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::staging::{Staging, dlpack_capsule, fill_view};

/// `RxGuard`'s and `RpcRxGuard`'s words for a memoryview alive at the end of the block.
pub(crate) const RX_DANGLING: &str =
    "Dangling memoryview detected: release the buffer before exiting the context.";
/// `RxGuard`'s and `RpcRxGuard`'s words for a buffer asked for after the block.
pub(crate) const RX_CLOSED: &str = "Cannot access memory: transaction already committed.";

/// A guard's buffer and its lending state.
#[derive(Debug)]
pub(crate) struct Lent {
    data: Staging,
    readonly: bool,
    exports: AtomicIsize,
    done: AtomicBool,
}

impl Lent {
    /// A buffer Python fills (a TX guard): `size` zeroed bytes, exported writable.
    pub(crate) fn writable(size: usize) -> Lent {
        Lent::new(Staging::zeroed(size), false)
    }

    /// A received copy (an RX guard), exported read-only.
    pub(crate) fn readonly(data: Vec<u8>) -> Lent {
        Lent::new(Staging::from_vec(data), true)
    }

    fn new(data: Staging, readonly: bool) -> Lent {
        Lent {
            data,
            readonly,
            exports: AtomicIsize::new(0),
            done: AtomicBool::new(false),
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// True once the `with` block has been left.
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Relaxed)
    }

    /// `__exit__`'s common part: marks the guard done. `Ok(true)` only for the first exit with
    /// no export alive (a TX guard then sends); a second exit is `Ok(false)`; a live export
    /// raises BufferError with `dangling` (the guard stays done: nothing more is lent or sent).
    pub(crate) fn exit(&self, dangling: &'static str) -> PyResult<bool> {
        if self.done.swap(true, Relaxed) {
            return Ok(false);
        }
        if self.exports.load(Relaxed) > 0 {
            return Err(PyBufferError::new_err(dangling));
        }
        Ok(true)
    }

    /// The first `len` bytes, to send at commit; ValueError when `len` exceeds the size
    /// acquired (`actual_size` is set from Python, unchecked until now).
    pub(crate) fn payload<'a>(&'a self, py: Python<'a>, len: usize) -> PyResult<&'a [u8]> {
        if len > self.data.len() {
            return Err(PyValueError::new_err(format!(
                "actual_size {len} exceeds the {} bytes acquired",
                self.data.len()
            )));
        }
        Ok(self.data.bytes(py, len))
    }

    /// `__getbuffer__`: exports all the bytes when `range` is None, else bytes
    /// `start..start + len`; BufferError with `closed` once the block has ended.
    ///
    /// # Safety
    /// `view` must be the pointer Python passed to `__getbuffer__`; `owner` must keep this
    /// `Lent` alive (it is the guard holding it, or an object holding that guard); `range` must
    /// lie inside the buffer.
    pub(crate) unsafe fn export(
        &self,
        owner: &Bound<'_, PyAny>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
        range: Option<(usize, usize)>,
        closed: &'static str,
    ) -> PyResult<()> {
        if self.is_done() {
            return Err(PyBufferError::new_err(closed));
        }
        let (start, len) = range.unwrap_or((0, self.data.len()));
        debug_assert!(start + len <= self.data.len());
        // SAFETY: view is Python's and start + len <= the length (the caller's contract; `None`
        // is the whole buffer); the bytes are this Lent's own allocation and live as long as
        // `owner`, which the view holds a reference to.
        unsafe {
            fill_view(
                owner,
                view,
                self.data.ptr_at(start),
                len,
                self.readonly,
                flags,
            )?
        };
        self.exports.fetch_add(1, Relaxed);
        Ok(())
    }

    /// `__releasebuffer__`, and a DLPack consumer letting its tensor go.
    pub(crate) fn release(&self) {
        self.exports.fetch_sub(1, Relaxed);
    }

    /// A DLPack capsule over bytes `start..start + len`, counted as an export until
    /// `on_release(owner)` runs. `owner` must hold this `Lent`; the caller checks `is_done`.
    pub(crate) fn dlpack<'py>(
        &self,
        owner: &Bound<'py, PyAny>,
        start: usize,
        len: usize,
        on_release: fn(&Bound<'_, PyAny>),
    ) -> PyResult<Bound<'py, PyAny>> {
        let capsule = dlpack_capsule(owner, self.data.ptr_at(start), len, on_release)?;
        self.exports.fetch_add(1, Relaxed);
        Ok(capsule)
    }
}

/// The `#[pymethods]` block of a guard (a `#[pyclass]` with a `lent: Lent` field): the
/// guard's own methods, with those every guard shares added to them.
///
/// ```ignore
/// guard_pymethods! {
///     impl RxGuard { /* the guard's own methods */ }
///     exit: release(RX_DANGLING),
///     buffer: RX_CLOSED,
/// }
/// ```
///
/// - `__enter__` returns the guard.
/// - `__exit__(exc_type=None, exc_value=None, traceback=None)` ends the block; `DANGLING` is
///   the BufferError message for a memoryview still alive ([`Lent::exit`]). With
///   `exit: commit(DANGLING)` (a TX guard), leaving without an exception then calls the
///   guard's `fn commit(&self, py: Python<'_>) -> PyResult<()>`; with `exit:
///   release(DANGLING)` (an RX guard), nothing more happens.
/// - `buffer: CLOSED` (optional): `__getbuffer__` (all the bytes; BufferError `CLOSED` after
///   the block, [`Lent::export`]) and `__releasebuffer__`.
/// - `atomics: [name (setter): type, …]` (optional): a read-write Python property per atomic
///   field of the guard, read and written `Relaxed` (a TX guard's size and type, which only the
///   thread holding the GIL sets before the commit reads them).
///
/// PyO3 takes one `#[pymethods]` block per class and expands no macro inside one, so the
/// macro writes the whole block. (It cannot take `*args`: PyO3 names its own varargs variable
/// with the argument's span, which hygiene hides inside a macro; hence the three optional
/// arguments of every `__exit__`, as the stubs declare them.)
macro_rules! guard_pymethods {
    (
        impl $guard:ident { $($own:tt)* }
        exit: $exit:ident($dangling:expr),
        $(buffer: $closed:expr,)?
        $(atomics: [$($(#[doc = $doc:literal])* $field:ident ($setter:ident): $ty:ty),* $(,)?],)?
    ) => {
        // PyO3's wrappers call `__getbuffer__` / `__releasebuffer__` inside an `unsafe fn`,
        // with spans from this macro, which the crate's `deny(unsafe_op_in_unsafe_fn)` then
        // takes for ours; the methods written here use explicit `unsafe` blocks all the same.
        #[allow(unsafe_op_in_unsafe_fn)]
        const _: () = {
            #[pyo3::pymethods]
            impl $guard {
                $($own)*

                $($(
                    $(#[doc = $doc])*
                    #[getter]
                    fn $field(&self) -> $ty {
                        self.$field.load(std::sync::atomic::Ordering::Relaxed)
                    }

                    #[setter]
                    fn $setter(&self, value: $ty) -> pyo3::PyResult<()> {
                        self.$field.store(value, std::sync::atomic::Ordering::Relaxed);
                        Ok(())
                    }
                )*)?

                fn __enter__(slf: pyo3::Py<Self>) -> pyo3::Py<Self> {
                    slf
                }

                #[pyo3(signature = (exc_type = None, exc_value = None, traceback = None))]
                fn __exit__(
                    &self,
                    py: pyo3::Python<'_>,
                    exc_type: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
                    exc_value: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
                    traceback: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
                ) -> pyo3::PyResult<bool> {
                    let _ = (py, exc_value, traceback);
                    let clean = self.lent.exit($dangling)? && exc_type.is_none_or(|t| t.is_none());
                    $crate::guard::guard_pymethods!(@on_exit $exit, self, py, clean);
                    Ok(false)
                }

                $(
                    /// # Safety
                    /// Called by Python's buffer protocol with a valid `view`.
                    unsafe fn __getbuffer__(
                        slf: pyo3::Bound<'_, Self>,
                        view: *mut pyo3::ffi::Py_buffer,
                        flags: std::ffi::c_int,
                    ) -> pyo3::PyResult<()> {
                        // SAFETY: view comes from Python; the view holds `slf`, the guard
                        // owning the bytes, and `None` lends them all.
                        unsafe { slf.get().lent.export(slf.as_any(), view, flags, None, $closed) }
                    }

                    /// # Safety
                    /// Called by Python's buffer protocol.
                    unsafe fn __releasebuffer__(&self, _view: *mut pyo3::ffi::Py_buffer) {
                        self.lent.release();
                    }
                )?
            }
        };
    };
    (@on_exit commit, $guard:ident, $py:ident, $clean:ident) => {
        if $clean {
            $guard.commit($py)?;
        }
    };
    (@on_exit release, $guard:ident, $py:ident, $clean:ident) => {
        let _ = $clean;
    };
}
pub(crate) use guard_pymethods;
