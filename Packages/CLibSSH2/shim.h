// Typed wrappers for what Swift cannot import from libssh2.h (variadic functions,
// function-like macros). Imported by the one wrapper module only.
#include <libssh2.h>
