// zlib: inflate for gzip layers and blobs.
#include <zlib.h>
