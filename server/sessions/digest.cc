#include "server/sessions/digest.h"

#include <openssl/evp.h>

#include <cstdint>

namespace rnnserve::sessions {
namespace {

std::string Hex(const unsigned char* digest, unsigned int size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

std::string HexDigest(const EVP_MD* md, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, md, nullptr);
  return Hex(digest, size);
}

}  // namespace

std::string Sha1Hex(std::string_view data) {
  return HexDigest(EVP_sha1(), data);
}

std::string Sha256Hex(std::string_view data) {
  return HexDigest(EVP_sha256(), data);
}

}  // namespace rnnserve::sessions

namespace rnnserve::sessions {

std::string Sha256Hex(std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(context, EVP_sha256(), nullptr);
  for (std::string_view part : parts) {
    // Each part's length first, so that no two lists digest alike.
    const uint64_t size = part.size();
    EVP_DigestUpdate(context, &size, sizeof(size));
    EVP_DigestUpdate(context, part.data(), part.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(context, digest, &size);
  EVP_MD_CTX_free(context);
  return Hex(digest, size);
}

}  // namespace rnnserve::sessions
