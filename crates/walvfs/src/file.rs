//! The write-ahead-log file object: the real VFS's file, with the run of gathered appends in
//! front of it.

use std::ffi::{c_char, c_int, c_void};
use std::mem::size_of;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::ffi;

use crate::FLUSH_BYTES;

/// A WAL frame header: page number, database size (non-zero on the commit frame), salts and
/// checksums.
const FRAME_HEADER: usize = 24;

/// The most the unix VFS writes in one call: it masks a write's length to 17 bits
/// (`seekAndWriteFd`), since SQLite itself never writes more than a page at once.
const MAX_WRITE: usize = 0x1f000;

static RECEIVED: AtomicU64 = AtomicU64::new(0);
static FORWARDED: AtomicU64 = AtomicU64::new(0);

pub(crate) fn write_counts() -> (u64, u64) {
    (
        RECEIVED.load(Ordering::Relaxed),
        FORWARDED.load(Ordering::Relaxed),
    )
}

/// Our part of a WAL file object. SQLite allocates `szOsFile` bytes for every file; ours starts
/// with this and the real VFS's file object follows at [`HEAD`]. Files that are not a WAL hold
/// the real VFS's object alone, from the start.
#[repr(C)]
struct WalFile {
    /// SQLite's part, first: `pMethods` is [`METHODS`].
    base: ffi::sqlite3_file,
    /// The real VFS's file object, in the same allocation.
    real: *mut ffi::sqlite3_file,
    /// Gathered bytes, to be written at `start`.
    run: Vec<u8>,
    start: i64,
    /// Where the last run handed over (or the last direct write) ended: the file's append
    /// point, or -1 when unknown (after a truncation).
    next_append: i64,
    /// The previous write was a commit frame's header: hand the run over after this write (its
    /// page).
    flush_after_next: bool,
}

/// Where the real file object starts (SQLite's allocations are 8-byte aligned, and so is this).
const HEAD: usize = size_of::<WalFile>().next_multiple_of(8);

/// `szOsFile` for this VFS: our part and the real one's.
pub(crate) fn os_file_size(real: c_int) -> Option<c_int> {
    c_int::try_from(HEAD).ok()?.checked_add(real)
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// `xOpen`: WAL files get the wrapper, every other file is the real VFS's object as it is.
pub(crate) unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite calls this with our VFS and `szOsFile` (HEAD + the real size) writable
    // bytes at `file`, 8-byte aligned. A file that is not a WAL is opened by the real VFS at
    // `file` itself (it needs only its own size); a WAL's real object goes at HEAD, and our
    // part is written in front of it only once that open succeeded.
    unsafe {
        let real_vfs = crate::real(vfs);
        let Some(x_open) = (*real_vfs).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return x_open(real_vfs, name, file, flags, out_flags);
        }
        let real = file.cast::<u8>().add(HEAD).cast::<ffi::sqlite3_file>();
        (*real).pMethods = ptr::null();
        let rc = x_open(real_vfs, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // SQLite calls xClose only when pMethods is set: close the real object ourselves.
            if let Some(m) = (*real).pMethods.as_ref()
                && let Some(x_close) = m.xClose
            {
                x_close(real);
            }
            (*file).pMethods = ptr::null();
            return rc;
        }
        ptr::write(
            file.cast::<WalFile>(),
            WalFile {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                real,
                run: Vec::new(),
                start: 0,
                next_append: -1,
                flush_after_next: false,
            },
        );
        ffi::SQLITE_OK
    }
}

/// Our part of a file SQLite passes to one of [`METHODS`].
///
/// # Safety
/// `file` must be a file [`open`] set up as a WAL (only those carry [`METHODS`]), not closed,
/// and SQLite must not be using it on another thread (it serialises calls on one file).
unsafe fn this<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    // SAFETY: see the function's contract.
    unsafe { &mut *file.cast::<WalFile>() }
}

impl WalFile {
    fn methods(&self) -> &'static ffi::sqlite3_io_methods {
        // SAFETY: the real object was opened successfully and is closed only in `close`, after
        // which SQLite does not call us again; its methods are the real VFS's static table
        // (the unix VFS's tables are complete `sqlite3_io_methods`, whatever their version).
        unsafe { &*(*self.real).pMethods }
    }

    /// Writes straight to the real file, in pieces the real VFS takes whole.
    fn write_through(&self, data: &[u8], offset: i64) -> c_int {
        let Some(x_write) = self.methods().xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let mut at = offset;
        for piece in data.chunks(MAX_WRITE) {
            FORWARDED.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the real file is open; `piece` is valid for its length, which is at most
            // MAX_WRITE and so fits a c_int.
            let rc = unsafe { x_write(self.real, piece.as_ptr().cast(), piece.len() as c_int, at) };
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            at += piece.len() as i64;
        }
        ffi::SQLITE_OK
    }

    /// Hands the run to the real file.
    fn flush(&mut self) -> c_int {
        if self.run.is_empty() {
            return ffi::SQLITE_OK;
        }
        let rc = self.write_through(&self.run, self.start);
        self.next_append = self.start + self.run.len() as i64;
        // Keeps the allocation for the next run.
        self.run.clear();
        rc
    }

    /// Puts a write into the run, or through to the file when it cannot join it.
    fn place(&mut self, data: &[u8], offset: i64) -> c_int {
        let len = data.len() as i64;
        if !self.run.is_empty() {
            let end = self.start + self.run.len() as i64;
            if offset >= self.start && offset + len <= end {
                // A page the same transaction writes again, inside the run.
                let at = (offset - self.start) as usize;
                self.run[at..at + data.len()].copy_from_slice(data);
                return ffi::SQLITE_OK;
            }
            if offset == end {
                self.run.extend_from_slice(data);
                return ffi::SQLITE_OK;
            }
            // Anything else reaches the file in the order it was written.
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if data.len() == FRAME_HEADER && offset != self.next_append {
            // A lone header away from the append point: a checksum rewrite of an earlier frame
            // (or the first frame after a truncation); no page follows it into a run.
            self.next_append = offset + len;
            return self.write_through(data, offset);
        }
        self.start = offset;
        self.run.extend_from_slice(data);
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    RECEIVED.fetch_add(1, Ordering::Relaxed);
    // SAFETY: SQLite passes one of our WAL files and `amount` readable bytes at `data`.
    let (f, data) = unsafe {
        let Ok(n) = usize::try_from(amount) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        (this(file), std::slice::from_raw_parts(data.cast::<u8>(), n))
    };
    let commit_header = data.len() == FRAME_HEADER && data[4..8] != [0; 4];
    let flush_now = std::mem::take(&mut f.flush_after_next);
    let mut rc = f.place(data, offset);
    if rc == ffi::SQLITE_OK && (flush_now || f.run.len() >= FLUSH_BYTES) {
        rc = f.flush();
    }
    if commit_header {
        f.flush_after_next = true;
    }
    rc
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite passes one of our WAL files and never uses it after this call; our part
    // is dropped in place (SQLite frees the memory).
    unsafe {
        let f = this(file);
        let flushed = f.flush();
        let closed = match f.methods().xClose {
            Some(x_close) => x_close(f.real),
            None => ffi::SQLITE_OK,
        };
        ptr::drop_in_place(file.cast::<WalFile>());
        (*file).pMethods = ptr::null();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

/// Defines a method that hands the run over first and then calls the real file's method.
macro_rules! flush_then {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite passes one of our WAL files; the real method gets the real file
            // and the caller's arguments.
            unsafe {
                let f = this(file);
                let rc = f.flush();
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                match f.methods().$field {
                    Some(m) => m(f.real $(, $arg)*),
                    None => ffi::SQLITE_IOERR,
                }
            }
        }
    };
}

/// Defines a method that only calls the real file's method (`$none` when it has none).
macro_rules! through {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty, $none:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: SQLite passes one of our WAL files; the real method gets the real file
            // and the caller's arguments.
            unsafe {
                let f = this(file);
                match f.methods().$field {
                    Some(m) => m(f.real $(, $arg)*),
                    None => $none,
                }
            }
        }
    };
}

flush_then!(read, xRead, (data: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64));
flush_then!(sync, xSync, (flags: c_int));
flush_then!(file_size, xFileSize, (size: *mut ffi::sqlite3_int64));
flush_then!(file_control, xFileControl, (op: c_int, arg: *mut c_void));

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: SQLite passes one of our WAL files.
    let f = unsafe { this(file) };
    let rc = f.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    f.next_append = -1;
    match f.methods().xTruncate {
        // SAFETY: the real file is open.
        Some(m) => unsafe { m(f.real, size) },
        None => ffi::SQLITE_IOERR_TRUNCATE,
    }
}

through!(lock, xLock, (level: c_int) -> c_int, ffi::SQLITE_IOERR_LOCK);
through!(unlock, xUnlock, (level: c_int) -> c_int, ffi::SQLITE_IOERR_UNLOCK);
through!(check_reserved_lock, xCheckReservedLock, (out: *mut c_int) -> c_int, ffi::SQLITE_IOERR);
through!(sector_size, xSectorSize, () -> c_int, 4096);
through!(device_characteristics, xDeviceCharacteristics, () -> c_int, 0);
through!(shm_map, xShmMap, (region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int, ffi::SQLITE_IOERR);
through!(shm_lock, xShmLock, (offset: c_int, n: c_int, flags: c_int) -> c_int, ffi::SQLITE_IOERR);
through!(shm_unmap, xShmUnmap, (delete: c_int) -> c_int, ffi::SQLITE_OK);

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite passes one of our WAL files.
    let f = unsafe { this(file) };
    if let Some(m) = f.methods().xShmBarrier {
        // SAFETY: the real file is open.
        unsafe { m(f.real) }
    }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes one of our WAL files and a place for the pointer.
    unsafe {
        let f = this(file);
        let m = f.methods();
        match m.xFetch {
            Some(x_fetch) if m.iVersion >= 3 => {
                let rc = f.flush();
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                x_fetch(f.real, offset, amount, out)
            }
            _ => {
                // No memory mapping: SQLite reads instead.
                *out = ptr::null_mut();
                ffi::SQLITE_OK
            }
        }
    }
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes one of our WAL files and a pointer `fetch` returned (or null).
    unsafe {
        let f = this(file);
        let m = f.methods();
        match m.xUnfetch {
            Some(x_unfetch) if m.iVersion >= 3 => x_unfetch(f.real, offset, p),
            _ => ffi::SQLITE_OK,
        }
    }
}
