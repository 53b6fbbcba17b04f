#include "kh_lazy.h"
#include "kh_lazy_probe.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// One lock for every library: loading happens a handful of times per process.
static pthread_mutex_t kh_lazy_mutex = PTHREAD_MUTEX_INITIALIZER;

/// Records why `library` cannot be used. Called with the lock held.
static void kh_lazy_fail(kh_lazy_library *library, const char *what) {
    snprintf(library->error, sizeof library->error, "%s (%s) is not usable: %s; install the Debian package %s",
             library->name, library->soname, what, library->package);
    atomic_store_explicit(&library->state, 2, memory_order_release);
}

const char *kh_lazy_load(kh_lazy_library *library) {
    int state = atomic_load_explicit(&library->state, memory_order_acquire);
    if (state == 1) return NULL;
    if (state == 2) return library->error;
    pthread_mutex_lock(&kh_lazy_mutex);
    if (atomic_load_explicit(&library->state, memory_order_acquire) == 0) {
        // RTLD_LOCAL: the library's symbols stay out of the global scope, so loading it
        // cannot change what any other library binds to.
        void *handle = dlopen(library->soname, RTLD_LAZY | RTLD_LOCAL);
        if (handle == NULL) {
            const char *why = dlerror();
            kh_lazy_fail(library, why != NULL ? why : "dlopen failed");
        } else {
            library->handle = handle;
            char missing[256] = "";
            size_t used = 0;
            unsigned absent = 0;
            for (unsigned i = 0; i < library->count; i++) {
                void *address = dlsym(handle, library->symbols[i]);
                if (address == NULL) {
                    absent++;
                    int n = snprintf(missing + used, sizeof missing - used, "%s%s", absent > 1 ? ", " : "", library->symbols[i]);
                    if (n > 0 && (size_t)n < sizeof missing - used) used += (size_t)n;
                    continue;
                }
                atomic_store_explicit(&library->slots[i], address, memory_order_release);
            }
            if (absent > 0) {
                char what[400];
                snprintf(what, sizeof what, "it lacks %u function%s kh calls (%s); kh needs a newer version", absent,
                         absent == 1 ? "" : "s", missing);
                // The slots that were filled stay filled; the library stays loaded.
                kh_lazy_fail(library, what);
            } else {
                atomic_store_explicit(&library->state, 1, memory_order_release);
            }
        }
    }
    pthread_mutex_unlock(&kh_lazy_mutex);
    return atomic_load_explicit(&library->state, memory_order_acquire) == 1 ? NULL : library->error;
}

void *kh_lazy_symbol_slow(kh_lazy_library *library, unsigned index) {
    const char *error = kh_lazy_load(library);
    void *address = index < library->count ? atomic_load_explicit(&library->slots[index], memory_order_acquire) : NULL;
    if (address != NULL) return address;
    fprintf(stderr, "kh: %s\n", error != NULL ? error : "a library function is missing");
    exit(3);
}

char *kh_lazy_probe(const char *name, const char *soname, const char *package, const char *symbol) {
    const char *symbols[1] = {symbol};
    void *_Atomic slots[1] = {NULL};
    kh_lazy_library library = {
        .name = name, .soname = soname, .package = package, .symbols = symbols, .count = 1, .slots = slots,
    };
    const char *error = kh_lazy_load(&library);
    char *result = error != NULL ? strdup(error) : NULL;
    if (library.handle != NULL) dlclose(library.handle);
    return result;
}
