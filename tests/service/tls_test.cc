// TLS and mutual TLS on the gRPC port, with throwaway certificates made now
// by tests/testing/make_test_certs.sh (openssl CLI): who gets served, who is
// turned away at the handshake, and the start-up checks of the PEM files.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/service/tls_options.h"
#include "tests/testing/golden.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

namespace fs = std::filesystem;
using service::LoadTlsOptions;
using service::TlsFiles;
using service::TlsOptions;
using testing::ContextWithDeadline;
using ::testing::HasSubstr;
using testing::TestServer;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/rnnserve_tls_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = new fs::path(pattern);
    const std::string command =
        "sh '" +
        (testing::SourceDir() / "tests/testing/make_test_certs.sh").string() +
        "' '" + dir_->string() + "'";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    dir_ = nullptr;
  }

  static std::string Path(const std::string& name) {
    return (*dir_ / name).string();
  }
  static std::string Read(const std::string& name) {
    std::ifstream in(Path(name));
    std::ostringstream text;
    text << in.rdbuf();
    EXPECT_FALSE(text.str().empty()) << name;
    return text.str();
  }

  // The server's TLS as rnnserve's flags would load it.
  static TlsOptions ServerTls(bool mutual) {
    auto tls = LoadTlsOptions(
        {Path("server.pem"), Path("server.key"), mutual ? Path("ca.pem") : ""});
    EXPECT_TRUE(tls.ok()) << tls.status();
    return tls.ok() ? *tls : TlsOptions{};
  }

  static std::unique_ptr<TestServer> Start(bool mutual) {
    service::ServerOptions options;
    options.tls = ServerTls(mutual);
    auto server = std::make_unique<TestServer>(
        testing::LoadModels({"models/fashion_lstm"}), options);
    EXPECT_TRUE(server->ok());
    return server;
  }

  // A TLS client trusting `ca`, presenting `client` (.pem and .key) unless
  // empty.
  static std::shared_ptr<grpc::Channel> TlsChannel(const TestServer& server,
                                                   const std::string& ca,
                                                   const std::string& client) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Read(ca);
    if (!client.empty()) {
      ssl.pem_cert_chain = Read(client + ".pem");
      ssl.pem_private_key = Read(client + ".key");
    }
    return grpc::CreateChannel(server.address(), grpc::SslCredentials(ssl));
  }

  static grpc::Status ListModels(const std::shared_ptr<grpc::Channel>& channel,
                                 v1::ListModelsResponse* response) {
    auto context = ContextWithDeadline();
    return v1::Inference::NewStub(channel)->ListModels(
        context.get(), v1::ListModelsRequest(), response);
  }

  static fs::path* dir_;
};

fs::path* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, ClientTrustingTheCaIsServed) {
  auto server = Start(/*mutual=*/false);
  auto channel = TlsChannel(*server, "ca.pem", "");
  ASSERT_TRUE(testing::WaitUntilConnected(*channel));
  v1::ListModelsResponse models;
  const grpc::Status listed = ListModels(channel, &models);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  ASSERT_EQ(models.models_size(), 1);
  // A real inference over the same connection.
  v1::ClassifyRequest request;
  request.set_model("fashion_lstm");
  v1::Sequence* s = request.add_sequences();
  s->set_steps(28);
  s->mutable_values()->Resize(28 * 28, 0.5f);
  v1::ClassifyResponse response;
  auto context = ContextWithDeadline();
  const grpc::Status classified = v1::Inference::NewStub(channel)->Classify(
      context.get(), request, &response);
  ASSERT_TRUE(classified.ok()) << classified.error_message();
  EXPECT_EQ(response.results(0).probabilities_size(), 10);
}

TEST_F(TlsTest, PlaintextClientIsRefused) {
  auto server = Start(/*mutual=*/false);
  v1::ListModelsResponse models;
  const grpc::Status s =
      ListModels(grpc::CreateChannel(server->address(),
                                     grpc::InsecureChannelCredentials()),
                 &models);
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsTest, ClientTrustingAnotherCaRefusesTheServer) {
  auto server = Start(/*mutual=*/false);
  v1::ListModelsResponse models;
  const grpc::Status s =
      ListModels(TlsChannel(*server, "rogue_ca.pem", ""), &models);
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsTest, MutualTlsServesAClientWithACertificateFromTheCa) {
  auto server = Start(/*mutual=*/true);
  auto channel = TlsChannel(*server, "ca.pem", "client");
  ASSERT_TRUE(testing::WaitUntilConnected(*channel));
  v1::ListModelsResponse models;
  const grpc::Status s = ListModels(channel, &models);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(TlsTest, MutualTlsRefusesAClientWithoutACertificate) {
  auto server = Start(/*mutual=*/true);
  v1::ListModelsResponse models;
  const grpc::Status s = ListModels(TlsChannel(*server, "ca.pem", ""), &models);
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsTest, MutualTlsRefusesAClientCertificateFromAnotherCa) {
  auto server = Start(/*mutual=*/true);
  v1::ListModelsResponse models;
  const grpc::Status s =
      ListModels(TlsChannel(*server, "ca.pem", "rogue_client"), &models);
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << s.error_message();
}

// Start-up checks: each mistake is named by flag and file.
TEST_F(TlsTest, LoadTlsOptionsNamesTheFlagAndFileAtFault) {
  auto expect_error = [](const TlsFiles& files,
                         const std::vector<std::string>& words) {
    auto tls = LoadTlsOptions(files);
    ASSERT_FALSE(tls.ok());
    for (const std::string& word : words) {
      EXPECT_THAT(std::string(tls.status().message()), HasSubstr(word));
    }
  };
  const std::string cert = Path("server.pem"), key = Path("server.key");
  expect_error({cert, "", ""}, {"--tls-cert", "--tls-key", "both"});
  expect_error({"", key, ""}, {"--tls-cert", "--tls-key", "both"});
  expect_error({"", "", Path("ca.pem")}, {"--tls-client-ca", "--tls-cert"});
  expect_error({Path("missing.pem"), key, ""},
               {"--tls-cert", "missing.pem", "not found"});
  expect_error({key, key, ""}, {"--tls-cert", "server.key", "no PEM cert"});
  expect_error({cert, cert, ""}, {"--tls-key", "server.pem", "private key"});
  // The client's key does not belong to the server's certificate.
  expect_error(
      {cert, Path("client.key"), ""},
      {"--tls-key", "client.key", "not the private key", "server.pem"});
  expect_error({cert, key, key},
               {"--tls-client-ca", "server.key", "no PEM cert"});
  // An encrypted key could only be used by prompting for its passphrase.
  const std::string encrypted = Path("encrypted.key");
  const std::string command = "openssl pkey -in '" + key +
                              "' -aes256 -passout pass:secret -out '" +
                              encrypted + "'";
  ASSERT_EQ(std::system(command.c_str()), 0);
  expect_error({cert, encrypted, ""}, {"--tls-key", "unencrypted"});

  auto plain = LoadTlsOptions({"", "", ""});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->enabled());
  auto mutual = LoadTlsOptions({cert, key, Path("ca.pem")});
  ASSERT_TRUE(mutual.ok()) << mutual.status();
  EXPECT_TRUE(mutual->enabled());
  EXPECT_TRUE(mutual->mutual());
}

}  // namespace
}  // namespace rnnserve
