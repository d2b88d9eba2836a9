#!/usr/bin/env bash
# build-k8s.sh OUTDIR builds the control plane loco's Kubernetes tests run
# against (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, and kwok to simulate nodes) from the Go modules pinned in this
# directory's go.mod (kwok: kwok/go.mod), into OUTDIR/<hash>/, where
# <hash> is that of the pins (go.mod, go.sum, kwok/) and this script: a tree whose pins did not change
# reuses the binaries, so only the first run pays the build. It prints the
# directory. Compiles run under nice so guest tests on a shared machine are
# not starved.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-k8s.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
export PATH=/usr/local/go/bin:$PATH
hash=$(cat "$here/go.mod" "$here/go.sum" "$here/kwok/go.mod" "$here/kwok/go.sum" "$here/build-k8s.sh" | sha256sum | cut -c1-16)
dir=$out/$hash
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubelet)
ok=1
for b in "${bins[@]}"; do [[ -x $dir/$b ]] || ok=0; done
if [[ $ok == 1 ]]; then echo "$dir"; exit 0; fi

mkdir -p "$dir"
k8sver=$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
# The version the binaries report; discovery and version skew checks read it.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8sver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$k8sver" | cut -d. -f2)"
declare -A pkgs=(
	[etcd]=go.etcd.io/etcd/server/v3
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
	[kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
	[kwok]=sigs.k8s.io/kwok/cmd/kwok
	[kubelet]=k8s.io/kubernetes/cmd/kubelet
)
start=$(date +%s)
for b in "${bins[@]}"; do
	[[ -x $dir/$b ]] && continue
	t0=$(date +%s)
	mod=$here
	[[ $b == kwok ]] && mod=$here/kwok
	(cd "$mod" && CGO_ENABLED=0 nice -n 15 go build -trimpath -ldflags "$ldflags" -o "$dir/$b.tmp" "${pkgs[$b]}")
	mv "$dir/$b.tmp" "$dir/$b"
	echo "built $b in $(( $(date +%s) - t0 ))s" >&2
done
echo "control plane built in $(( $(date +%s) - start ))s" >&2
# Binaries of older pins are of no use any more (about 400 MB a set).
for old in "$out"/*/; do
	[[ $(basename "$old") == "$hash" ]] || rm -rf "$old"
done
echo "$dir"
