// TLS for the gRPC port: the server's certificate and key, and the CA that
// client certificates must chain to for mutual TLS.
#ifndef RNNSERVE_SERVER_SERVICE_TLS_OPTIONS_H_
#define RNNSERVE_SERVER_SERVICE_TLS_OPTIONS_H_

#include <string>

#include "absl/status/statusor.h"

namespace rnnserve::service {

// PEM texts, not paths: the files are read once, at start-up.
struct TlsOptions {
  // The server's certificate, then any intermediates. Empty: plaintext.
  std::string cert_chain;
  // The private key of the first certificate of cert_chain.
  std::string private_key;
  // Non-empty: mutual TLS. Every client must present a certificate that
  // chains to one of these CA certificates, or the handshake fails.
  std::string client_ca;

  bool enabled() const { return !cert_chain.empty(); }
  bool mutual() const { return !client_ca.empty(); }
};

// The files named by rnnserve's --tls-cert, --tls-key and --tls-client-ca
// (each may be empty).
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string client_ca;
};

// Reads and checks the files: cert and key go together, client_ca needs
// them, each file parses as PEM, and the key belongs to the certificate.
// Every message names the flag and the file, never a key's content, since
// operators meet these errors on the command line. Logs a warning for a
// certificate outside its validity period.
absl::StatusOr<TlsOptions> LoadTlsOptions(const TlsFiles& files);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_TLS_OPTIONS_H_
