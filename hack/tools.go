//go:build tools

// Package hack pins the control-plane binaries that loco's Kubernetes tests
// build: `go build` of these import paths from this module gives the same
// versions on every machine (see build-k8s.sh).
package hack

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
