// pipe2(2) is a GNU extension that Swift's Glibc module does not expose.
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

int ocirpc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
