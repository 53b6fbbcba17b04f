// Loading a C library on first use instead of at every start of kh.
//
// kh links none of libgit2, libssh2 and libcurl: together with what they pull in (about
// 34 shared objects: OpenSSL, GnuTLS, Kerberos, LDAP, mbedTLS, ...) the dynamic loader
// spent about 8 ms mapping and relocating them at every start, also for `kh --help` and
// for commands that never use them. Each wrapper module (CLibGit2, CLibSSH2, CCurl)
// instead defines the library functions kh calls as small forwarding functions of the
// same name and signature (generated from the library's header by
// Tools/scripts/gen-lazy-stubs.py) that call through a slot filled by dlopen + dlsym
// the first time one of them is needed.
//
// The wrapper's Swift module calls kh_lazy_load (through its library's load function)
// in its one-time initialisation, so a missing library or symbol becomes a typed Swift
// error naming the shared object and the Debian package; a forwarding function called
// without that (a programming error) loads the library itself and, when that fails,
// prints the same message and exits with kh's "blocked by an unmet dependency" code 3.
#ifndef KH_LAZY_H
#define KH_LAZY_H

#include <stdatomic.h>
#include <stddef.h>

/// A C library kh loads on first use.
typedef struct kh_lazy_library {
    /// The library's usual name, such as "libgit2".
    const char *name;
    /// The shared object to dlopen, such as "libgit2.so.1.5" (from the header kh was built with).
    const char *soname;
    /// The Debian package that installs the shared object.
    const char *package;
    /// The functions kh calls, in slot order.
    const char *const *symbols;
    /// How many there are.
    unsigned count;
    /// Their addresses once loaded (count entries, zero until then).
    void *_Atomic *slots;
    /// dlopen's handle once loaded (never closed: the functions stay in use).
    void *handle;
    /// 0 not tried, 1 loaded, 2 failed (then `error` says why).
    _Atomic int state;
    /// Why loading failed.
    char error[512];
} kh_lazy_library;

/// Loads `library` and resolves all its symbols, once per process (later calls return
/// the first outcome). NULL when it is loaded; else a message naming the shared object,
/// what the dynamic loader said, and the Debian package to install. Thread-safe.
const char *kh_lazy_load(kh_lazy_library *library);

/// The slow path of kh_lazy_symbol: loads the library, or prints why it cannot and exits 3.
void *kh_lazy_symbol_slow(kh_lazy_library *library, unsigned index);

/// The address of the library's `index`th function, loading the library on first use.
static inline void *kh_lazy_symbol(kh_lazy_library *library, unsigned index) {
    void *address = atomic_load_explicit(&library->slots[index], memory_order_acquire);
    return address != NULL ? address : kh_lazy_symbol_slow(library, index);
}

#endif
