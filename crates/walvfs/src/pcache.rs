//! SQLite's own page cache, with one page number spelled differently.
//!
//! When a b-tree split leaves sibling pages out of order, `balance_nonroot` swaps two of them
//! through a temporary page number: that of the lock-byte page (`PENDING_BYTE / page size + 1`,
//! 262,145 at 4 KiB pages), which never holds data. SQLite's default cache (`pcache1`) remembers
//! the highest page number it has seen, so after such a swap the truncate that ends every
//! transaction believes pages up to 262,145 may be cached and walks its whole hash table (every
//! cached page) instead of the few slots past the end of the database. Inserts into random
//! leaves (deliveries to thousands of webhooks) split often, and the walk showed as 2–4% of the
//! writer thread's CPU (docs/benchmarks.md, items 37 and 55).
//!
//! This module installs, once per process and before SQLite is first used, a cache that forwards
//! every call to the default one and passes that temporary page number on as key 0, a number
//! SQLite never uses for a page (page numbers start at 1). Key 0 never raises the default cache's
//! highest key, and nothing else changes: the same cache, pages, sizes and eviction.
//!
//! If SQLite was already initialised in this process (another library opened a database first),
//! installing is refused and the default cache is used unwrapped.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

use rusqlite::ffi;

/// Where SQLite's lock bytes begin in every database file (`PENDING_BYTE`; only SQLite's own
/// test harness moves it).
const PENDING_BYTE: c_uint = 0x4000_0000;

/// The default cache's methods, as SQLite had them before [`install`].
struct DefaultCache(ffi::sqlite3_pcache_methods2);

// SAFETY: the methods are plain function pointers; `pArg` is the default cache's own argument,
// which SQLite only passes to `xInit` and `xShutdown` under its initialisation mutex.
unsafe impl Send for DefaultCache {}
// SAFETY: as for `Send`; nothing here is written after `install`.
unsafe impl Sync for DefaultCache {}

static DEFAULT: OnceLock<DefaultCache> = OnceLock::new();

fn default() -> &'static ffi::sqlite3_pcache_methods2 {
    // Our methods are only registered after DEFAULT was set.
    &DEFAULT
        .get()
        .expect("the default page cache is recorded first")
        .0
}

/// How many times a page was renamed to or from the temporary page number (see [`renamed`]).
static RENAMED: AtomicU64 = AtomicU64::new(0);

/// How many times, in this process, a page was renamed to or from the temporary page number
/// through the installed cache (two per swap of two sibling pages: to it, and back).
pub fn renamed() -> u64 {
    RENAMED.load(Ordering::Relaxed)
}

/// One cache of ours: the default cache's, and the temporary page number of its page size.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    swap: c_uint,
}

impl Cache {
    /// The key the default cache sees for page number `key`.
    fn key(&self, key: c_uint) -> c_uint {
        if key == self.swap { 0 } else { key }
    }
}

/// # Safety
/// `p` was returned by [`x_create`] and not yet destroyed.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a Cache {
    // SAFETY: `x_create` made `p` from a boxed `Cache`, which lives until `x_destroy`.
    unsafe { &*p.cast::<Cache>() }
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    let d = default();
    match d.xInit {
        // SAFETY: the default cache's own initialiser, with its own argument.
        Some(f) => unsafe { f(d.pArg) },
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {
    let d = default();
    if let Some(f) = d.xShutdown {
        // SAFETY: as in `x_init`.
        unsafe { f(d.pArg) }
    }
}

unsafe extern "C" fn x_create(
    page_size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let Some(create) = default().xCreate else {
        return std::ptr::null_mut();
    };
    // SAFETY: SQLite's arguments, passed on unchanged.
    let inner = unsafe { create(page_size, extra, purgeable) };
    if inner.is_null() {
        return inner;
    }
    let swap = c_uint::try_from(page_size)
        .ok()
        .filter(|&s| s > 0)
        .map_or(0, |s| PENDING_BYTE / s + 1);
    Box::into_raw(Box::new(Cache { inner, swap })).cast()
}

/// Defines a method that passes its cache's default cache and the other arguments on
/// unchanged (`$none` when the default cache has no such method).
macro_rules! through {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?, $none:expr) => {
        unsafe extern "C" fn $name(p: *mut ffi::sqlite3_pcache $(, $arg: $ty)*) $(-> $ret)? {
            match default().$field {
                // SAFETY: SQLite passes one of our caches (made by `x_create`); the default
                // method gets the default cache inside it and the caller's arguments.
                Some(f) => unsafe { f(cache(p).inner $(, $arg)*) },
                None => $none,
            }
        }
    };
}

through!(x_cachesize, xCachesize, (n: c_int), ());
through!(x_pagecount, xPagecount, () -> c_int, 0);
through!(x_unpin, xUnpin, (page: *mut ffi::sqlite3_pcache_page, discard: c_int), ());
through!(x_truncate, xTruncate, (limit: c_uint), ());
through!(x_shrink, xShrink, (), ());

unsafe extern "C" fn x_fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    // SAFETY: SQLite passes one of our caches.
    let c = unsafe { cache(p) };
    match default().xFetch {
        // SAFETY: the default cache inside ours, and the key it knows the page by.
        Some(f) => unsafe { f(c.inner, c.key(key), create) },
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn x_rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    // SAFETY: SQLite passes one of our caches.
    let c = unsafe { cache(p) };
    if old == c.swap || new == c.swap {
        RENAMED.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(f) = default().xRekey {
        // SAFETY: the default cache inside ours, the page it handed out, and the keys it
        // knows the page by before and after.
        unsafe { f(c.inner, page, c.key(old), c.key(new)) }
    }
}

unsafe extern "C" fn x_destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: SQLite destroys each of our caches once, after its last use; `x_create` boxed it.
    let c = unsafe { Box::from_raw(p.cast::<Cache>()) };
    if let Some(f) = default().xDestroy {
        // SAFETY: the default cache inside ours, destroyed once with it.
        unsafe { f(c.inner) }
    }
}

/// Installs the cache, once per process, if SQLite has not been initialised yet; returns
/// whether it is in use.
pub fn install() -> bool {
    static ONCE: Once = Once::new();
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    ONCE.call_once(|| {
        // SAFETY: once per process, before the store's first connection.
        let _ = INSTALLED.set(unsafe { register() });
    });
    INSTALLED.get().copied().unwrap_or(false)
}

/// # Safety
/// `sqlite3_config` must not run while another thread uses SQLite; [`install`] calls this once,
/// before the store opens its first connection.
unsafe fn register() -> bool {
    let mut methods = std::mem::MaybeUninit::<ffi::sqlite3_pcache_methods2>::zeroed();
    // Both calls answer SQLITE_MISUSE once SQLite is initialised.
    // SAFETY: GETPCACHE2 writes one `sqlite3_pcache_methods2` through the pointer.
    if unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, methods.as_mut_ptr()) }
        != ffi::SQLITE_OK
    {
        return false;
    }
    // SAFETY: written by the successful call above.
    let methods = unsafe { methods.assume_init() };
    if methods.xCreate.is_none() || DEFAULT.set(DefaultCache(methods)).is_err() {
        return false;
    }
    let ours = ffi::sqlite3_pcache_methods2 {
        iVersion: 1,
        pArg: std::ptr::null_mut(),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        xCreate: Some(x_create),
        xCachesize: Some(x_cachesize),
        xPagecount: Some(x_pagecount),
        xFetch: Some(x_fetch),
        xUnpin: Some(x_unpin),
        xRekey: Some(x_rekey),
        xTruncate: Some(x_truncate),
        xDestroy: Some(x_destroy),
        xShrink: Some(x_shrink),
    };
    // SAFETY: PCACHE2 reads (copies) one `sqlite3_pcache_methods2` through the pointer.
    unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_PCACHE2, &raw const ours) == ffi::SQLITE_OK }
}
