// libzstd: streaming decompression for zstd layers and blobs.
#include <zstd.h>
