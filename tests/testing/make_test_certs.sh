#!/bin/sh
# Throwaway certificates for TLS tests, made at test time with the openssl
# CLI (nothing secret is committed). Usage: make_test_certs.sh DIR
#
#   ca.pem                    CA that signs the server and client
#   server.pem, server.key    for 127.0.0.1 and localhost (subjectAltName)
#   client.pem, client.key    client certificate signed by ca.pem
#   rogue_ca.pem              an unrelated CA
#   rogue_client.pem, .key    client certificate signed by rogue_ca.pem
#
# Valid for two days: long enough for any test run, short if one leaks.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() {  # ca NAME SUBJECT
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
}

leaf() {  # leaf NAME SUBJECT CA EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$2"
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" \
    -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=rnnserve test CA"
ca rogue_ca "/CN=rnnserve rogue CA"
leaf server "/CN=localhost" ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
leaf client "/CN=rnnserve test client" ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
leaf rogue_client "/CN=rnnserve rogue client" rogue_ca \
  "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f ./*.srl
