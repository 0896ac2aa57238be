#!/usr/bin/env bash
# Starts a real etcd and kube-apiserver on 127.0.0.1 for the conformance suite.
#
#   scripts/kube-up.sh [STATE_DIR]
#
# Builds the tools first if needed (scripts/kube-tools.sh; K8SGEN_KUBE_CACHE),
# or takes kube-apiserver, etcd and kubectl from the folder $K8SGEN_KUBE_BIN (the
# flake check `k8sgen-server-validate` passes nixpkgs' there).
# STATE_DIR (default: a new temporary folder) receives self-made certificates
# (openssl), etcd's data, the logs, the PIDs (etcd.pid, kube-apiserver.pid) and
# an admin kubeconfig (kubeconfig). The API server runs with RBAC
# (--authorization-mode=RBAC), a service-account signing key and a service
# range; it listens on 127.0.0.1 only, on free ports. Waits for /readyz, then
# prints STATE_DIR on stdout (everything else goes to stderr). Stop it with
# scripts/kube-down.sh STATE_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ -n "${K8SGEN_KUBE_BIN:-}" ]; then
  bin="$K8SGEN_KUBE_BIN"
else
  bin="$("$here/kube-tools.sh")"
fi

state="${1:-}"
if [ -z "$state" ]; then
  state="$(mktemp -d "${TMPDIR:-/tmp}/k8sgen-kube.XXXXXX")"
fi
mkdir -p "$state"
state="$(cd "$state" && pwd)"
for f in etcd.pid kube-apiserver.pid; do
  if [ -f "$state/$f" ] && kill -0 "$(cat "$state/$f")" 2>/dev/null; then
    echo "kube-up: $state already runs a server (pid $(cat "$state/$f")); stop it with scripts/kube-down.sh $state" >&2
    exit 1
  fi
done

command -v openssl >/dev/null 2>&1 || {
  echo "kube-up: openssl is not installed" >&2
  exit 1
}

# Free loopback ports, as the kernel hands them out.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
etcd_port="$(free_port)"
etcd_peer_port="$(free_port)"
api_port="$(free_port)"

# --- certificates: one CA, the API server's serving certificate, an admin client.
pki="$state/pki"
mkdir -p "$pki"
(
  cd "$pki"
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  key ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 7 -subj "/CN=k8sgen-conformance-ca" -out ca.crt 2>/dev/null
  sign() { # name subject extensions
    key "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 7 \
      -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  }
  sign apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
  sign admin "/O=system:masters/CN=k8sgen-conformance-admin" "extendedKeyUsage=clientAuth"
  # The service-account token signing key pair.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
)

# --- etcd on loopback.
# The flags of the etcd release binary (conformance/kube's etcd takes the same).
"$bin/etcd" --name conformance --data-dir "$state/etcd-data" --log-level warn \
  --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "conformance=http://127.0.0.1:$etcd_peer_port" \
  >"$state/etcd.log" 2>&1 &
echo $! >"$state/etcd.pid"

# --- kube-apiserver on loopback.
"$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$etcd_port" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$api_port" \
  --tls-cert-file="$pki/apiserver.crt" \
  --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --authorization-mode=RBAC \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range=10.0.0.0/24 \
  --endpoint-reconciler-type=none \
  --allow-privileged=true \
  --profiling=false \
  --cert-dir="$state/apiserver-certs" \
  >"$state/kube-apiserver.log" 2>&1 &
echo $! >"$state/kube-apiserver.pid"

cat >"$state/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: conformance
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: conformance
  context:
    cluster: conformance
    user: admin
current-context: conformance
EOF

# --- wait for /readyz (both processes must stay up meanwhile).
deadline=$((SECONDS + 180))
until "$bin/kubectl" --kubeconfig "$state/kubeconfig" get --raw /readyz >/dev/null 2>&1; do
  for p in etcd kube-apiserver; do
    if ! kill -0 "$(cat "$state/$p.pid")" 2>/dev/null; then
      echo "kube-up: $p exited; the end of $state/$p.log:" >&2
      tail -n 30 "$state/$p.log" >&2
      "$here/kube-down.sh" "$state" >&2 || true
      exit 1
    fi
  done
  if [ $SECONDS -ge $deadline ]; then
    echo "kube-up: the API server was not ready within 180s; the end of its log:" >&2
    tail -n 30 "$state/kube-apiserver.log" >&2
    "$here/kube-down.sh" "$state" >&2 || true
    exit 1
  fi
  sleep 1
done
echo "kube-up: kube-apiserver ready on https://127.0.0.1:$api_port (etcd on 127.0.0.1:$etcd_port); KUBECONFIG=$state/kubeconfig" >&2
echo "$state"
