// Typed wrappers for what Swift cannot import from git2.h (variadic functions,
// function-like macros). Imported by the one wrapper module (KhGit) only.
#include <git2.h>

/// git_libgit2_opts(GIT_OPT_GET_OWNER_VALIDATION, int *).
int kh_git_get_owner_validation(int *enabled);

/// git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, int).
int kh_git_set_owner_validation(int enabled);

/// git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, path): where libgit2 looks for the
/// global, XDG or system configuration file (path NULL restores the default).
int kh_git_set_config_search_path(git_config_level_t level, const char *path);

/// git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, level, git_buf *): the folders (separated by
/// GIT_PATH_LIST_SEPARATOR) where libgit2 looks for the configuration of `level`.
int kh_git_get_config_search_path(git_config_level_t level, git_buf *out);

/// git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, int): whether every object
/// read is hashed again and compared with its id.
int kh_git_set_strict_hash_verification(int enabled);

/// Loads libgit2 on first use (Packages/CKhLazy): dlopen, then dlsym of every function kh
/// calls, once per process. NULL when it is usable, else why not (naming the shared object
/// and the Debian package). KhGit calls it before any other libgit2 function.
const char *kh_git2_load(void);
