#!/bin/sh
# Make a throw-away test CA and an NTS server certificate signed by it, for the
# Molecule scenarios. Usage: make-test-pki.sh DIR NAME [IP]
# Idempotent: keeps an existing set that still has more than 20 days left.
set -eu

dir=$1
name=$2
ip=${3:-}

if [ -f "$dir/renewed.crt" ] && [ -f "$dir/server.crt" ] && openssl x509 -in "$dir/server.crt" -noout -checkend $((20 * 86400)) >/dev/null; then
    exit 0
fi

mkdir -p "$dir"
umask 077
cd "$dir"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 60 \
    -subj "/CN=ntsops Molecule test CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

san="DNS:$name"
[ -n "$ip" ] && san="$san,IP:$ip"
cat >server.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san
EXT

# server.*: what the role deploys; renewed.*: a later certificate with a new key,
# which verify.yml hands to the certbot deploy hook.
for leaf in server renewed; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=$name" -keyout "$leaf.key" -out "$leaf.csr" 2>/dev/null
    openssl x509 -req -in "$leaf.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -days 45 -extfile server.ext -out "$leaf.crt" 2>/dev/null
    rm -f "$leaf.csr"
done
rm -f server.ext ca.srl
chmod 0644 ca.crt server.crt renewed.crt
echo "make-test-pki: CA and certificate for $name in $dir"
