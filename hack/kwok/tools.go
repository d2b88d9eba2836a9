//go:build tools

// Package kwok pins kwok, which simulates nodes and their kubelets for the
// kubernetes runtime's status tests where no real kubelet runs. It is a
// module of its own because it is built against another Kubernetes minor
// than hack/go.mod (it only talks to the API server).
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
