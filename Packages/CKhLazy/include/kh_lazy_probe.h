// What Swift sees of CKhLazy (kh_lazy.h is for the C wrapper modules only).
#ifndef KH_LAZY_PROBE_H
#define KH_LAZY_PROBE_H

/// Loads `soname` and looks `symbol` up in it exactly as kh loads its C libraries, then
/// unloads it: NULL when both work, else the message kh would show (free it with free()).
/// For tests and diagnostics of the loader itself.
char *kh_lazy_probe(const char *name, const char *soname, const char *package, const char *symbol);

#endif
