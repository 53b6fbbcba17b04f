// The variadic git_libgit2_opts behind the typed declarations of include/shim.h,
// called through the library loaded on first use (lazy.h).
#include "shim.h"

#include "lazy.h"

int kh_git_get_owner_validation(int *enabled) {
    return KH_GIT2_git_libgit2_opts(GIT_OPT_GET_OWNER_VALIDATION, enabled);
}

int kh_git_set_owner_validation(int enabled) {
    return KH_GIT2_git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}

int kh_git_set_config_search_path(git_config_level_t level, const char *path) {
    return KH_GIT2_git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, path);
}

int kh_git_get_config_search_path(git_config_level_t level, git_buf *out) {
    return KH_GIT2_git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, level, out);
}

int kh_git_set_strict_hash_verification(int enabled) {
    return KH_GIT2_git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, enabled);
}
