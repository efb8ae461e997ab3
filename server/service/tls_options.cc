#include "server/service/tls_options.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/common/file_reader.h"
#include "server/common/log.h"
#include "server/common/status_macros.h"

namespace rnnserve::service {
namespace {

// Certificates and keys are a few KiB; a CA bundle may be a few hundred.
constexpr uint64_t kMaxPemBytes = 4 << 20;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// An encrypted key would make OpenSSL prompt on the terminal; refuse it.
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::StatusOr<std::string> ReadPem(const std::string& flag,
                                    const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(path, kMaxPemBytes);
  if (!text.ok()) {
    return absl::Status(
        text.status().code(),
        absl::StrCat("--", flag, ": ", text.status().message()));
  }
  return text;
}

// Every certificate in `pem`, in order; none when it holds no PEM
// certificate (or a broken one).
std::vector<X509Ptr> ParseCertificates(const std::string& pem) {
  std::vector<X509Ptr> certificates;
  auto bio = MemoryBio(pem);
  while (bio != nullptr) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (cert == nullptr) break;
    certificates.push_back(std::move(cert));
  }
  // The read past the last certificate always leaves an error behind.
  ERR_clear_error();
  return certificates;
}

absl::Status CheckCertificates(const std::string& flag, const std::string& path,
                               const std::string& pem,
                               std::vector<X509Ptr>* out) {
  std::vector<X509Ptr> certificates = ParseCertificates(pem);
  if (certificates.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": ", path,
        ": holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
  }
  for (const X509Ptr& cert : certificates) {
    if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0) {
      Log("warning: --", flag, ": ", path,
          ": a certificate has expired; TLS peers will refuse it");
    } else if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) > 0) {
      Log("warning: --", flag, ": ", path,
          ": a certificate is not valid yet (clock skew?)");
    }
  }
  if (out != nullptr) *out = std::move(certificates);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TlsOptions> LoadTlsOptions(const TlsFiles& files) {
  TlsOptions tls;
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: give both to serve TLS, or "
        "neither for plaintext");
  }
  if (!files.client_ca.empty() && files.cert.empty()) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS "
        "with client certificates");
  }
  if (files.cert.empty()) return tls;

  ASSIGN_OR_RETURN(tls.cert_chain, ReadPem("tls-cert", files.cert));
  std::vector<X509Ptr> chain;
  RETURN_IF_ERROR(
      CheckCertificates("tls-cert", files.cert, tls.cert_chain, &chain));

  ASSIGN_OR_RETURN(tls.private_key, ReadPem("tls-key", files.key));
  auto bio = MemoryBio(tls.private_key);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      bio == nullptr
          ? nullptr
          : PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-key: ", files.key,
        ": holds no unencrypted PEM private key (an encrypted key cannot be "
        "used: the server has no one to ask for its passphrase)"));
  }
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key: ", files.key,
                     ": is not the private key of the first "
                     "certificate in --tls-cert ",
                     files.cert));
  }

  if (!files.client_ca.empty()) {
    ASSIGN_OR_RETURN(tls.client_ca, ReadPem("tls-client-ca", files.client_ca));
    RETURN_IF_ERROR(CheckCertificates("tls-client-ca", files.client_ca,
                                      tls.client_ca, nullptr));
  }
  return tls;
}

}  // namespace rnnserve::service
