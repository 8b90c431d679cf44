#!/bin/sh
# Writes ca.crt, tls.crt and tls.key for the webhook's Service into this directory (or DIR):
#   ./make-cert.sh [NAMESPACE [DIR]]          NAMESPACE: where the webhook runs (redline)
# A fresh CA each time: its key is deleted once the serving certificate is signed, so
# nothing but the Secret can sign for the webhook.
set -eu
namespace=${1:-redline}
dir=${2:-$(dirname "$0")}
service=redline-webhook
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$work/ca.key" -out "$dir/ca.crt" -days 365 -subj "/CN=redline-webhook-ca" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$dir/tls.key" -out "$work/tls.csr" -subj "/CN=$service.$namespace.svc" 2>/dev/null
printf 'subjectAltName=DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
  "$service" "$namespace" "$service" "$namespace" > "$work/ext"
openssl x509 -req -in "$work/tls.csr" -CA "$dir/ca.crt" -CAkey "$work/ca.key" \
  -CAserial "$work/ca.srl" -CAcreateserial -out "$dir/tls.crt" -days 365 -extfile "$work/ext" 2>/dev/null
chmod 600 "$dir/tls.key"
echo "wrote $dir/ca.crt, $dir/tls.crt and $dir/tls.key for $service.$namespace.svc (365 days)"
