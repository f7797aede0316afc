// OpenSSL libcrypto: EVP digests (sha256, sha512).
#include <openssl/evp.h>
