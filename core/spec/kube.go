package spec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// KubeRuntime is runtime "kubernetes": where the guests' objects go and
// what their pods mount. See docs/kubernetes.md.
type KubeRuntime struct {
	// Kubeconfig is the kubeconfig file (absolute); "" means client-go's
	// default: $KUBECONFIG, then ~/.kube/config.
	Kubeconfig string
	Context    string // the kubeconfig context; "" is its current one
	Namespace  string // must exist; loco does not create namespaces
	// Image is the container image the guest pods run QEMU from.
	Image string
	// BaseVolume is where the pods find the image's files (base disk,
	// kernel, initrd), by their base names, mounted read-only.
	BaseVolume BaseVolume
	// StorageClass and OverlaySize are the per-guest overlay claims';
	// "" StorageClass is the cluster's default class.
	StorageClass string
	OverlaySize  string
	// KVM is how a pod gets /dev/kvm: "device-plugin" (a
	// devices.kubevirt.io/kvm resource), "host-path" (a hostPath device and
	// a privileged container) or "none" (TCG).
	KVM string
}

// BaseVolume is one of a PVC, a hostPath directory or an NFS export.
type BaseVolume struct {
	Kind string // "pvc", "host-path" or "nfs"
	// Claim (pvc), Path (host-path: the node's directory; nfs: the export)
	// and Server (nfs).
	Claim, Path, Server string
}

// Defaults of runtime "kubernetes".
const (
	DefaultKubeNamespace   = "default"
	DefaultKubeImage       = "loco.local/qemu-host:1"
	DefaultKubeOverlaySize = "8Gi"
	DefaultKubeKVM         = "none"
)

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	quantityRE   = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$`)
)

// ParseBaseVolume reads base_volume: "pvc:NAME", "host-path:/DIR" or
// "nfs:SERVER:/EXPORT".
func ParseBaseVolume(s string) (BaseVolume, error) {
	kind, rest, _ := strings.Cut(s, ":")
	switch kind {
	case "pvc":
		if !dns1123Label.MatchString(rest) {
			return BaseVolume{}, fmt.Errorf("base_volume %q: the claim name after pvc: is a DNS label (lower-case letters, digits, '-')", s)
		}
		return BaseVolume{Kind: kind, Claim: rest}, nil
	case "host-path":
		if !strings.HasPrefix(rest, "/") {
			return BaseVolume{}, fmt.Errorf("base_volume %q: give the node's directory as an absolute path, as in host-path:/srv/loco", s)
		}
		return BaseVolume{Kind: kind, Path: rest}, nil
	case "nfs":
		server, path, ok := strings.Cut(rest, ":")
		if !ok || server == "" || !strings.HasPrefix(path, "/") {
			return BaseVolume{}, fmt.Errorf("base_volume %q: write nfs:SERVER:/EXPORT, as in nfs:files.lan:/exports/loco", s)
		}
		return BaseVolume{Kind: kind, Server: server, Path: path}, nil
	}
	return BaseVolume{}, fmt.Errorf("base_volume %q: write pvc:NAME, host-path:/DIR or nfs:SERVER:/EXPORT", s)
}

func decodeKubeRuntime(rb *runtimeBlock, dir string) (*KubeRuntime, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	errAt := func(attr, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: attrRange(rb.Body, attr, hcl.Range{})})
	}
	k := &KubeRuntime{Namespace: DefaultKubeNamespace, Image: DefaultKubeImage, OverlaySize: DefaultKubeOverlaySize, KVM: DefaultKubeKVM}
	if rb.Address != nil || rb.Snapshotter != nil {
		attr := "address"
		if rb.Address == nil {
			attr = "snapshotter"
		}
		errAt(attr, "Attribute of another runtime", fmt.Sprintf("%s is an attribute of runtime \"containerd\"; runtime \"kubernetes\" has none.", attr))
	}
	if rb.RestartLimit != nil {
		errAt("restart_limit", "Attribute of another runtime", "restart_limit does not apply to runtime \"kubernetes\": the kubelet restarts a guest's QEMU with its own backoff.")
	}
	if rb.Kubeconfig != nil {
		k.Kubeconfig = resolve(dir, *rb.Kubeconfig)
	}
	if rb.Context != nil {
		k.Context = *rb.Context
	}
	if rb.Namespace != nil {
		if !dns1123Label.MatchString(*rb.Namespace) {
			errAt("namespace", "Invalid Kubernetes namespace", fmt.Sprintf("namespace = %q: a DNS label, 1-63 lower-case letters, digits and '-'.", *rb.Namespace))
		}
		k.Namespace = *rb.Namespace
	}
	if rb.Image != nil {
		if *rb.Image == "" || strings.ContainsAny(*rb.Image, " \t\n") {
			errAt("image", "Invalid image", fmt.Sprintf("image = %q: a container image reference such as registry.lan/loco/qemu:1.", *rb.Image))
		}
		k.Image = *rb.Image
	}
	if rb.BaseVolume != nil {
		bv, err := ParseBaseVolume(*rb.BaseVolume)
		if err != nil {
			errAt("base_volume", "Invalid base volume", err.Error())
		}
		k.BaseVolume = bv
	} else {
		errAt("", "Missing base volume", `runtime "kubernetes" needs base_volume: where the pods find the image's files, as "pvc:NAME", "host-path:/DIR" or "nfs:SERVER:/EXPORT" (docs/kubernetes.md).`)
	}
	if rb.StorageClass != nil {
		if !dns1123Label.MatchString(*rb.StorageClass) && !strings.Contains(*rb.StorageClass, ".") {
			errAt("storage_class", "Invalid storage class", fmt.Sprintf("storage_class = %q: a StorageClass name.", *rb.StorageClass))
		}
		k.StorageClass = *rb.StorageClass
	}
	if rb.OverlaySize != nil {
		if !quantityRE.MatchString(*rb.OverlaySize) {
			errAt("overlay_size", "Invalid size", fmt.Sprintf("overlay_size = %q: a Kubernetes quantity such as \"8Gi\".", *rb.OverlaySize))
		}
		k.OverlaySize = *rb.OverlaySize
	}
	if rb.KVM != nil {
		switch *rb.KVM {
		case "device-plugin", "host-path", "none":
		default:
			errAt("kvm", "Invalid kvm", fmt.Sprintf("kvm = %q: choose device-plugin (a devices.kubevirt.io/kvm resource), host-path (the node's /dev/kvm, privileged) or none (TCG).", *rb.KVM))
		}
		k.KVM = *rb.KVM
	}
	return k, diags
}

// rejectKubeAttrs reports runtime "kubernetes"'s attributes in another
// runtime's block.
func rejectKubeAttrs(rb *runtimeBlock, driver string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, a := range []struct {
		attr string
		set  bool
	}{{"kubeconfig", rb.Kubeconfig != nil}, {"context", rb.Context != nil}, {"image", rb.Image != nil}, {"base_volume", rb.BaseVolume != nil},
		{"storage_class", rb.StorageClass != nil}, {"overlay_size", rb.OverlaySize != nil}, {"kvm", rb.KVM != nil}} {
		if a.set {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Attribute of another runtime",
				Detail: fmt.Sprintf("%s is an attribute of runtime \"kubernetes\"; runtime %q has none.", a.attr, driver), Subject: attrRange(rb.Body, a.attr, hcl.Range{})})
		}
	}
	return diags
}
