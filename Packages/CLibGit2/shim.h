// Typed wrappers for what Swift cannot import from git2.h (variadic functions,
// function-like macros). Imported by the one wrapper module only.
#include <git2.h>
