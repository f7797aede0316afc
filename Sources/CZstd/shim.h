// libzstd: streaming decompression for zstd layers and blobs. The
// advanced API (exported by Debian's shared libzstd) gives a decoder
// allocation functions of the caller's (`ZSTD_createDStream_advanced`), so
// what a stream's window takes is charged to the memory budget.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
