// The YAML config loader on text (load_config_string, as `turnout check` and a reload use it
// after reading the file), under both environment policies.
//
// A fuzzed config names files (ca_file, prompt_file, state paths, ...). The loader must not
// open them here: a FIFO or a tty would block, /dev/zero would grow memory. The link wraps the
// open calls (fuzz/CMakeLists.txt: -Wl,--wrap=...): while the loader runs they fail with
// EACCES and are counted, so the loader takes its "cannot read" path; outside it (libFuzzer
// reading the corpus) they pass through.
#include <fcntl.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "config/loader.hpp"

namespace {
bool loading = false;  // libFuzzer runs the target on one thread
}  // namespace

extern "C" {
std::FILE* __real_fopen(const char* path, const char* mode);
std::FILE* __real_fopen64(const char* path, const char* mode);
int __real_open(const char* path, int flags, ...);
int __real_open64(const char* path, int flags, ...);
int __real_openat(int dir, const char* path, int flags, ...);
int __real_openat64(int dir, const char* path, int flags, ...);

std::FILE* __wrap_fopen(const char* path, const char* mode) {
    if (loading) return errno = EACCES, nullptr;
    return __real_fopen(path, mode);
}
std::FILE* __wrap_fopen64(const char* path, const char* mode) {
    if (loading) return errno = EACCES, nullptr;
    return __real_fopen64(path, mode);
}

// open(2)'s mode argument exists only with O_CREAT or O_TMPFILE.
#define TURNOUT_MODE_ARG(flags, mode)                                 \
    mode_t mode = 0;                                                  \
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) { \
        va_list args;                                                 \
        va_start(args, flags);                                        \
        mode = static_cast<mode_t>(va_arg(args, int));                \
        va_end(args);                                                 \
    }

int __wrap_open(const char* path, int flags, ...) {
    TURNOUT_MODE_ARG(flags, mode)
    if (loading) return errno = EACCES, -1;
    return __real_open(path, flags, mode);
}
int __wrap_open64(const char* path, int flags, ...) {
    TURNOUT_MODE_ARG(flags, mode)
    if (loading) return errno = EACCES, -1;
    return __real_open64(path, flags, mode);
}
int __wrap_openat(int dir, const char* path, int flags, ...) {
    TURNOUT_MODE_ARG(flags, mode)
    if (loading) return errno = EACCES, -1;
    return __real_openat(dir, path, flags, mode);
}
int __wrap_openat64(int dir, const char* path, int flags, ...) {
    TURNOUT_MODE_ARG(flags, mode)
    if (loading) return errno = EACCES, -1;
    return __real_openat64(dir, path, flags, mode);
}
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string yaml(reinterpret_cast<const char*>(data), size);
    using turnout::config::EnvPolicy;
    for (const auto policy : {EnvPolicy::warn, EnvPolicy::require}) {
        loading = true;
        const auto result = turnout::config::load_config_string(yaml, "fuzz.yaml", policy);
        loading = false;
        // Either a config or errors, never both or neither.
        if ((result.config == nullptr) == result.errors.empty()) __builtin_trap();
    }
    return 0;
}
