// OpenSSL libcrypto: SHA-256 and SHA-512 (the one-algorithm interface of
// <openssl/sha.h>, which OpenSSL 3 marks deprecated in favour of EVP: EVP's
// first use sets up the provider and its name tables, about 3 million
// instructions of a short process's start; see Registry/Digest.swift).
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
