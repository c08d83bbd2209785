#!/bin/sh
# A throw-away CA for the lab and one server certificate per name it is given, plus
# a second ("renewed") certificate with a new key for each, which
# playbooks/cert_renew.yml can install. The lab (playbooks/lab/up.yml) uses it only for
# its ACME server's TLS certificate. Usage: make-pki.sh DIR NAME...
# Idempotent: keeps an existing set whose certificates have more than 20 days left.
set -eu

dir=$1
shift
mkdir -p "$dir"
umask 077
cd "$dir"

fresh=yes
for name in "$@"; do
    for leaf in server renewed; do
        if ! openssl x509 -in "$name/$leaf.crt" -noout -checkend $((20 * 86400)) >/dev/null 2>&1; then
            fresh=no
        fi
    done
done
if [ "$fresh" = yes ] && [ -f ca.crt ]; then
    exit 0
fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
    -subj "/CN=ntsops lab CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

for name in "$@"; do
    mkdir -p "$name"
    cat >"$name/ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$name
EXT
    for leaf in server renewed; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=$name" -keyout "$name/$leaf.key" -out "$name/$leaf.csr" 2>/dev/null
        openssl x509 -req -in "$name/$leaf.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
            -days 60 -extfile "$name/ext" -out "$name/$leaf.crt" 2>/dev/null
        rm -f "$name/$leaf.csr"
    done
    rm -f "$name/ext"
    chmod 0644 "$name/server.crt" "$name/renewed.crt"
done
rm -f ca.srl
chmod 0644 ca.crt
echo "make-pki: lab CA and certificates for $* in $dir"
