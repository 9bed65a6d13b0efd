//! The memory a guard lends to Python.
//!
//! A guard never lends the ring itself: a Python object can outlive any Rust borrow, and a
//! memoryview (or a DLPack tensor) kept past the `with` block would otherwise read or write a
//! slot the peer already reuses. Each guard owns a [`Staging`] buffer instead: a TX guard's
//! writes go there and are copied into the ring at commit (one `memcpy`), an RX guard's message
//! is copied there when it is taken. Whatever Python keeps, it keeps a pointer into memory that
//! lives exactly as long as the guard object, which every export keeps alive.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;

/// A fixed-size heap buffer reached only through raw pointers, so that Python may write into
/// it through the buffer protocol while Rust holds the owning value.
pub struct Staging {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Staging` owns its allocation (like a `Box<[u8]>`); the bytes are only read or
// written while the GIL is held (buffer-protocol access from Python needs the GIL, and our
// methods run with it), so no two threads touch them at once.
unsafe impl Send for Staging {}
// SAFETY: as above: every access happens under the GIL, which serialises them.
unsafe impl Sync for Staging {}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Staging({} bytes)", self.len)
    }
}

impl Staging {
    /// A zeroed buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Staging {
        Staging::from_vec(vec![0; len])
    }

    /// A buffer holding `bytes`.
    pub fn from_vec(bytes: Vec<u8>) -> Staging {
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        let raw = Box::into_raw(boxed);
        // SAFETY: Box::into_raw never returns null (a zero-length box gives a dangling,
        // non-null, aligned pointer).
        let ptr = unsafe { NonNull::new_unchecked(raw.cast::<u8>()) };
        Staging { ptr, len }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first `n` bytes (at most the length). Call with the GIL held (`_py`), so that no
    /// Python code writes into the buffer while the slice lives.
    pub fn bytes(&self, _py: Python<'_>, n: usize) -> &[u8] {
        let n = n.min(self.len);
        // SAFETY: ptr is valid for len bytes (owned allocation) and n <= len; the GIL is held,
        // so no buffer-protocol writer runs while the slice is alive (it ends with this borrow
        // of `_py`'s scope at the latest).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), n) }
    }

    /// Bytes `start..start + n` as a raw pointer (for buffer exports and DLPack).
    pub fn ptr_at(&self, start: usize) -> *mut u8 {
        debug_assert!(start <= self.len);
        // SAFETY: start <= len, so the result stays inside (or one past) the allocation.
        unsafe { self.ptr.as_ptr().add(start.min(self.len)) }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // SAFETY: ptr/len came from Box::into_raw of a Box<[u8]> of this length, freed once.
        drop(unsafe { Box::from_raw(raw) });
    }
}

/// Fills `view` with `len` bytes at `ptr`, owned by `owner` (which the view keeps alive).
///
/// # Safety
/// `view` must be the pointer Python passed to `__getbuffer__`; `ptr` must stay valid for
/// `len` bytes as long as `owner` lives.
pub unsafe fn fill_view(
    owner: &Bound<'_, PyAny>,
    view: *mut ffi::Py_buffer,
    ptr: *mut u8,
    len: usize,
    readonly: bool,
    flags: c_int,
) -> PyResult<()> {
    let len = isize::try_from(len).map_err(|_| PyBufferError::new_err("buffer too large"))?;
    // SAFETY: the caller guarantees view is Python's and ptr is valid for len bytes while
    // owner lives; PyBuffer_FillInfo takes a new reference to owner for the view.
    let status = unsafe {
        ffi::PyBuffer_FillInfo(
            view,
            owner.as_ptr(),
            ptr.cast::<c_void>(),
            len,
            c_int::from(readonly),
            flags,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(owner.py()))
    }
}

/// DLPack's C structures (dlpack.h, ABI version 0.x "dltensor" capsules).
mod dl {
    use std::ffi::c_void;

    #[repr(C)]
    pub struct Device {
        pub device_type: i32,
        pub device_id: i32,
    }

    #[repr(C)]
    pub struct DataType {
        pub code: u8,
        pub bits: u8,
        pub lanes: u16,
    }

    #[repr(C)]
    pub struct Tensor {
        pub data: *mut c_void,
        pub device: Device,
        pub ndim: i32,
        pub dtype: DataType,
        pub shape: *mut i64,
        pub strides: *mut i64,
        pub byte_offset: u64,
    }

    #[repr(C)]
    pub struct ManagedTensor {
        pub dl_tensor: Tensor,
        pub manager_ctx: *mut c_void,
        pub deleter: Option<unsafe extern "C" fn(*mut ManagedTensor)>,
    }

    pub const CPU: i32 = 1;
    pub const UINT: u8 = 1;
}

/// A managed tensor with its shape and the Python object owning the bytes.
#[repr(C)]
struct OwnedTensor {
    managed: dl::ManagedTensor,
    shape: [i64; 1],
    strides: [i64; 1],
    owner: Py<PyAny>,
    on_release: fn(&Bound<'_, PyAny>),
}

unsafe extern "C" fn delete_tensor(managed: *mut dl::ManagedTensor) {
    if managed.is_null() {
        return;
    }
    // SAFETY: every ManagedTensor we hand out is the first field of a Box<OwnedTensor> made in
    // `dlpack_capsule` (repr(C), so the pointers coincide), and DLPack calls the deleter once.
    let owned = unsafe { Box::from_raw(managed.cast::<OwnedTensor>()) };
    Python::attach(|py| {
        (owned.on_release)(owned.owner.bind(py));
        drop(owned);
    });
}

const DLTENSOR: &std::ffi::CStr = c"dltensor";

unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: Python calls this with the capsule being destroyed (GIL held). A consumer that
    // took the tensor renamed the capsule ("used_dltensor") and owns the deleter call; only an
    // unconsumed one still named "dltensor" is ours to delete.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, DLTENSOR.as_ptr()) == 1 {
            let managed = ffi::PyCapsule_GetPointer(capsule, DLTENSOR.as_ptr());
            delete_tensor(managed.cast::<dl::ManagedTensor>());
        } else {
            ffi::PyErr_Clear();
        }
    }
}

/// A DLPack capsule describing `len` bytes at `ptr` as a 1-D uint8 CPU tensor. The capsule
/// (and then its consumer) holds a reference to `owner`, which keeps the bytes alive;
/// `on_release(owner)` runs when the consumer lets the tensor go.
pub fn dlpack_capsule<'py>(
    owner: &Bound<'py, PyAny>,
    ptr: *mut u8,
    len: usize,
    on_release: fn(&Bound<'_, PyAny>),
) -> PyResult<Bound<'py, PyAny>> {
    let py = owner.py();
    let owned = Box::new(OwnedTensor {
        managed: dl::ManagedTensor {
            dl_tensor: dl::Tensor {
                data: ptr.cast::<c_void>(),
                device: dl::Device {
                    device_type: dl::CPU,
                    device_id: 0,
                },
                ndim: 1,
                dtype: dl::DataType {
                    code: dl::UINT,
                    bits: 8,
                    lanes: 1,
                },
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(delete_tensor),
        },
        shape: [len as i64],
        strides: [1],
        owner: owner.clone().unbind(),
        on_release,
    });
    let raw = Box::into_raw(owned);
    // SAFETY: raw is a live, uniquely owned allocation; pointing shape/strides at its own
    // fields is fine because the box never moves until the deleter frees it.
    unsafe {
        (*raw).managed.dl_tensor.shape = (*raw).shape.as_mut_ptr();
        (*raw).managed.dl_tensor.strides = (*raw).strides.as_mut_ptr();
        (*raw).managed.manager_ctx = raw.cast::<c_void>();
    }
    // SAFETY: the name is a 'static C string; the destructor frees the tensor unless a consumer
    // took it. On failure nobody owns the tensor, so we delete it here.
    unsafe {
        let capsule = ffi::PyCapsule_New(
            raw.cast::<c_void>(),
            DLTENSOR.as_ptr(),
            Some(capsule_destructor),
        );
        if capsule.is_null() {
            let err = PyErr::fetch(py);
            delete_tensor(raw.cast::<dl::ManagedTensor>());
            return Err(err);
        }
        Ok(Bound::from_owned_ptr(py, capsule))
    }
}

/// The bytes of an object exporting a buffer, reachable only while the export is held.
///
/// Deliberately not a `&[u8]` for the whole call: a caller that releases the GIL (to wait for
/// room) must not hold a reference into memory another Python thread may then write (a
/// `bytearray`, a numpy array). Take short slices with [`RawBytes::get`] with the GIL held, and
/// drop them before releasing it.
#[derive(Debug)]
pub struct RawBytes {
    ptr: *const u8,
    len: usize,
}

impl RawBytes {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes `start..start + n` (clamped to the length). `_py` proves the GIL is held, so no
    /// Python code writes them while the slice is in use.
    pub fn get(&self, _py: Python<'_>, start: usize, n: usize) -> &[u8] {
        let start = start.min(self.len);
        let n = n.min(self.len - start);
        if n == 0 {
            return &[];
        }
        // SAFETY: the export (held by `with_bytes` for as long as this value is reachable)
        // keeps len bytes at ptr alive and unmoved; start + n <= len; the GIL is held and the
        // callers drop the slice before releasing it.
        unsafe { std::slice::from_raw_parts(self.ptr.add(start), n) }
    }

    /// All the bytes (see [`RawBytes::get`]).
    pub fn all(&self, py: Python<'_>) -> &[u8] {
        self.get(py, 0, self.len)
    }
}

/// Calls `f` with the bytes of any object exporting a C-contiguous buffer (`bytes`,
/// `bytearray`, `memoryview`, a numpy array of any dtype...), holding the export only for
/// the call.
pub fn with_bytes<R>(
    obj: &Bound<'_, PyAny>,
    f: impl FnOnce(&RawBytes) -> PyResult<R>,
) -> PyResult<R> {
    if let Ok(bytes) = obj.cast::<pyo3::types::PyBytes>() {
        let raw = bytes.as_bytes();
        // `bytes` are immutable and `obj` holds them alive for the call.
        return f(&RawBytes {
            ptr: raw.as_ptr(),
            len: raw.len(),
        });
    }
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::zeroed();
    // SAFETY: view is writable storage for one Py_buffer; PyBUF_SIMPLE asks for contiguous
    // bytes (exporters that cannot provide them fail, raising BufferError/TypeError).
    let status =
        unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) };
    if status != 0 {
        let err = PyErr::fetch(obj.py());
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected bytes or an object with a contiguous buffer, got {}: {err}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )));
    }
    struct Release(std::mem::MaybeUninit<ffi::Py_buffer>);
    impl Drop for Release {
        fn drop(&mut self) {
            // SAFETY: the view was filled by a successful PyObject_GetBuffer and is released
            // once, with the GIL held (we are inside a method holding `obj`'s Python token).
            unsafe { ffi::PyBuffer_Release(self.0.as_mut_ptr()) }
        }
    }
    let view = Release(view);
    // SAFETY: GetBuffer succeeded, so the view is initialised.
    let (buf, len) = unsafe {
        let v = view.0.assume_init_ref();
        (v.buf.cast::<u8>().cast_const(), v.len)
    };
    let raw = RawBytes {
        ptr: buf,
        len: if buf.is_null() {
            0
        } else {
            usize::try_from(len).unwrap_or(0)
        },
    };
    let result = f(&raw);
    drop(view);
    result
}
