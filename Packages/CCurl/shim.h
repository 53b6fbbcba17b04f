// Typed wrappers for what Swift cannot import from curl/curl.h (variadic functions,
// function-like macros). Imported by the one wrapper module only.
#include <curl/curl.h>
