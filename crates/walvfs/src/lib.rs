//! A SQLite VFS shim that writes a transaction's write-ahead-log frames with one system call.
//!
//! SQLite's WAL writer issues two `pwrite`s per frame (the 24-byte frame header, then the page),
//! and on a virtual machine with dear system calls those were ~18% of the embedded store's writer
//! thread (docs/benchmarks.md, ninth round). This VFS wraps the platform's default VFS and, for
//! write-ahead-log files only, gathers consecutive appends in memory and hands them to the real
//! file as one write:
//!
//! - at the end of every **commit frame** (the frame whose header carries the database size):
//!   a transaction's frames reach the operating system inside the `xWrite` that writes the last
//!   of them, before SQLite publishes the new WAL-index header to readers, and a failed write
//!   fails that commit like any other I/O error;
//! - before any other operation on the file (`xRead`, `xSync`, `xTruncate`, `xFileSize`,
//!   `xFileControl`, `xClose`), before a write that does not continue the gathered run, and when
//!   the run passes [`FLUSH_BYTES`].
//!
//! Nothing else changes: every other file (the database, rollback journals, temporary files)
//! is the default VFS's own object, locks and shared memory go straight through, and the bytes
//! that reach the log are the same bytes at the same offsets. Only frames of a transaction that
//! has not committed yet (a cache spill) can wait in memory, and SQLite never reads or counts
//! on those from another connection.
//!
//! Register once with [`register`] and open the connection that writes with
//! `rusqlite::Connection::open_with_flags_and_vfs(path, flags, NAME)`; readers may use the
//! default VFS, they share the same files and locks.

mod file;

use std::ffi::{CStr, c_char, c_int};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name the VFS is registered under.
pub const NAME: &str = "tidings-wal";
const C_NAME: &CStr = c"tidings-wal";

/// A gathered run is handed over once it is this long, even before its commit frame (a large
/// transaction, or cache spills).
pub const FLUSH_BYTES: usize = 1 << 20;

/// The VFS could not be registered (SQLite's result code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterError(pub c_int);

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot register the {NAME} SQLite VFS (code {})", self.0)
    }
}

impl std::error::Error for RegisterError {}

static REGISTERED: OnceLock<c_int> = OnceLock::new();

/// Registers the VFS with SQLite (once per process; later calls return the first result). It
/// does not become the default. Returns [`NAME`], to open connections with.
pub fn register() -> Result<&'static str, RegisterError> {
    // SAFETY: `register_once` runs at most once, through the `OnceLock`.
    let rc = *REGISTERED.get_or_init(|| unsafe { register_once() });
    if rc == ffi::SQLITE_OK {
        Ok(NAME)
    } else {
        Err(RegisterError(rc))
    }
}

/// # Safety
/// Call at most once per process: the VFS object it registers lives for the rest of it.
unsafe fn register_once() -> c_int {
    // SAFETY: with a null name `sqlite3_vfs_find` initialises SQLite if needed and returns the
    // default VFS, a static object of SQLite's, or null.
    let real = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
    if real.is_null() {
        return ffi::SQLITE_ERROR;
    }
    // SAFETY: `real` is SQLite's default VFS object, valid for the life of the process.
    let r = unsafe { &*real };
    let Some(size) = file::os_file_size(r.szOsFile) else {
        return ffi::SQLITE_ERROR;
    };
    let vfs = Box::new(ffi::sqlite3_vfs {
        iVersion: 2,
        szOsFile: size,
        mxPathname: r.mxPathname,
        pNext: ptr::null_mut(),
        zName: C_NAME.as_ptr(),
        // Every forwarding function finds the real VFS here.
        pAppData: real.cast(),
        xOpen: Some(file::open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        // Loading extensions through this VFS goes to the default one's functions, which do
        // not look at their VFS argument (unixDlOpen & co. ignore it); nothing here loads any.
        xDlOpen: r.xDlOpen,
        xDlError: r.xDlError,
        xDlSym: r.xDlSym,
        xDlClose: r.xDlClose,
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    });
    // SAFETY: the object is leaked, so it outlives every connection that could use it, and its
    // name is a static string; SQLite only links it into its list.
    unsafe { ffi::sqlite3_vfs_register(Box::into_raw(vfs), 0) }
}

/// The default VFS this one wraps.
///
/// # Safety
/// `vfs` must be the object [`register_once`] registered.
unsafe fn real(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: the caller passes our VFS, whose `pAppData` is the real VFS.
    unsafe { (*vfs).pAppData.cast() }
}

/// Defines a VFS method that calls the real VFS's method of the same name with the real VFS.
macro_rules! forward {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(vfs: *mut ffi::sqlite3_vfs $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite calls this with our VFS; the real VFS's method gets the real VFS
            // and the caller's own arguments.
            unsafe {
                let real = real(vfs);
                match (*real).$field {
                    Some(f) => f(real $(, $arg)*),
                    None => ffi::SQLITE_ERROR,
                }
            }
        }
    };
}

forward!(x_delete, xDelete, (name: *const c_char, sync_dir: c_int));
forward!(x_access, xAccess, (name: *const c_char, flags: c_int, out: *mut c_int));
forward!(x_full_pathname, xFullPathname, (name: *const c_char, n: c_int, out: *mut c_char));
forward!(x_randomness, xRandomness, (n: c_int, out: *mut c_char));
forward!(x_sleep, xSleep, (micros: c_int));
forward!(x_current_time, xCurrentTime, (now: *mut f64));
forward!(x_get_last_error, xGetLastError, (n: c_int, out: *mut c_char));
forward!(x_current_time_int64, xCurrentTimeInt64, (now: *mut ffi::sqlite3_int64));

/// How many writes the write-ahead-log files received and how many reached the real files,
/// over the whole process (all connections using this VFS). For tests and measurements.
pub fn write_counts() -> (u64, u64) {
    file::write_counts()
}
