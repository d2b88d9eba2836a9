// Package kubernetes runs a cluster's guests on Kubernetes (runtime
// "kubernetes"): one StatefulSet pod per guest running the plan's QEMU
// command line, a headless Service naming the pods, ConfigMaps holding each
// guest's start script, and a PersistentVolumeClaim per guest for its disk
// overlay. The objects are built here, purely from the spec (so `loco
// render` and `loco run` send the same bytes), and applied with server-side
// apply under the field manager "loco". See docs/kubernetes.md.
package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/spec"
)

// Paths inside a guest's pod.
const (
	// PodStateDir is the state directory the in-pod plan is made for; each
	// pod's overlay claim is mounted at PodStateDir/guests, so guest i's
	// directory guests/<i> lives on its own claim.
	PodStateDir = "/var/lib/loco"
	// PodBaseDir is where the base volume is mounted, read-only: the
	// image's files are found there by their base names.
	PodBaseDir = "/var/lib/loco/base"
	podPlanDir = "/etc/loco/plan"
)

// Labels and annotations loco puts on its objects.
const (
	LabelCluster    = "loco.dev/cluster"
	LabelManaged    = "app.kubernetes.io/managed-by"
	AnnotationAccel = "loco.dev/accel"
	AnnotationPlan  = "loco.dev/plan-sha256"
	FieldManager    = "loco"
	// KVMResource is the extended resource KubeVirt's device plugin
	// advertises for /dev/kvm.
	KVMResource = "devices.kubevirt.io/kvm"
	// podIndexLabel is set by the StatefulSet controller (Kubernetes 1.28
	// on) on each pod: its ordinal, which is the guest's index.
	podIndexLabel = "apps.kubernetes.io/pod-index"
	// maxConfigMapData keeps each plan ConfigMap well under the API's
	// 1 MiB object limit; bigger plans are split over several.
	maxConfigMapData = 768 << 10
	// podOverheadMiB is what QEMU itself needs beyond the guest's memory:
	// a 128 MiB test guest's QEMU under TCG has ~250 MiB resident (the
	// translation cache, video memory), so less would get it OOM-killed.
	podOverheadMiB = 192
)

// Objects are what `loco run` applies for one cluster, in apply order.
type Objects struct {
	Namespace   string
	ConfigMaps  []*corev1.ConfigMap
	Service     *corev1.Service
	StatefulSet *appsv1.StatefulSet
	// Plan is the in-pod plan the scripts were made from.
	Plan *plan.Plan
}

// List is the objects in apply order.
func (o *Objects) List() []Object {
	var l []Object
	for _, cm := range o.ConfigMaps {
		l = append(l, Object{Kind: "ConfigMap", Name: cm.Name, Obj: cm})
	}
	l = append(l, Object{Kind: "Service", Name: o.Service.Name, Obj: o.Service})
	l = append(l, Object{Kind: "StatefulSet", Name: o.StatefulSet.Name, Obj: o.StatefulSet})
	return l
}

// Object is one object to apply.
type Object struct {
	Kind, Name string
	Obj        any
}

// Body is the JSON that apply sends for the object (and render prints as
// YAML): one function, so the two can never differ.
func (o Object) Body() ([]byte, error) {
	b, err := json.Marshal(o.Obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s: %w", o.Kind, o.Name, err)
	}
	// The typed structs marshal empty status blocks; an apply
	// configuration must not claim fields loco does not set, so they go.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	dropStatus(m)
	return json.Marshal(m)
}

// dropStatus removes "status" from an object and the objects it embeds
// (claim templates) and null values everywhere.
func dropStatus(v any) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "status")
		for k, e := range v {
			if e == nil {
				delete(v, k)
				continue
			}
			dropStatus(e)
		}
	case []any:
		for _, e := range v {
			dropStatus(e)
		}
	}
}

// Build makes the objects for a cluster. replicas is the number of guests
// to run: the spec's instances for `loco run`, 0 for `loco stop`.
func Build(c *spec.Cluster, replicas int) (*Objects, error) {
	k := c.Runtime.Kube
	if k == nil {
		return nil, fmt.Errorf("cluster %q does not use runtime \"kubernetes\"", c.Name)
	}
	if len(c.Plugins) > 0 {
		// Plugins would run as sidecars whose gRPC the core reaches over
		// mTLS (docs/kubernetes.md); that is not built yet, and a guest
		// without its network would be a silent half.
		var names []string
		for _, u := range c.Plugins {
			names = append(names, fmt.Sprintf("%s %q", u.Kind, u.Name))
		}
		return nil, fmt.Errorf("cluster %q: plugins (%s) with runtime \"kubernetes\": not supported yet (plugins as sidecars are designed in docs/kubernetes.md, not built)", c.Name, strings.Join(names, ", "))
	}
	p, err := PodPlan(c)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{LabelCluster: c.Name, LabelManaged: "loco"}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: k.Namespace, Labels: labels}
	}

	// The start scripts, split into ConfigMaps of bounded size, each key
	// <index>.sh; the pods mount them all through one projected volume.
	var cms []*corev1.ConfigMap
	var cur *corev1.ConfigMap
	size := 0
	sum := sha256.New()
	for _, g := range p.Guests {
		script := startScript(g)
		sum.Write([]byte(script))
		if cur == nil || size+len(script) > maxConfigMapData {
			cur = &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
				ObjectMeta: meta(fmt.Sprintf("%s-plan-%d", c.Name, len(cms))), Data: map[string]string{}}
			cms = append(cms, cur)
			size = 0
		}
		cur.Data[strconv.Itoa(g.Index)+".sh"] = script
		size += len(script)
	}
	planHash := hex.EncodeToString(sum.Sum(nil))

	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: meta(c.Name),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, Selector: labels,
			// Peers must find each other before they are ready: a guest's
			// LAN comes up after its pod has an address.
			PublishNotReadyAddresses: true,
			Ports:                    []corev1.ServicePort{{Name: "vxlan", Protocol: corev1.ProtocolUDP, Port: 4789, TargetPort: intstr.FromInt32(4789)}},
		}}

	sts, err := statefulSet(c, p, meta(c.Name), labels, cms, planHash, replicas)
	if err != nil {
		return nil, err
	}
	return &Objects{Namespace: k.Namespace, ConfigMaps: cms, Service: svc, StatefulSet: sts, Plan: p}, nil
}

// PodPlan is the cluster's plan as its pods run it: state under
// PodStateDir, the image's files under PodBaseDir, the accelerator the
// runtime's kvm setting gives.
func PodPlan(c *spec.Cluster) (*plan.Plan, error) {
	k := c.Runtime.Kube
	pc := *c
	pc.StateDir = PodStateDir
	for _, f := range []*string{&pc.Image.Disk, &pc.Image.Kernel, &pc.Image.Initrd} {
		if *f != "" {
			*f = path.Join(PodBaseDir, filepath.Base(*f))
		}
	}
	accel, reason := qemu.AccelTCG, "runtime \"kubernetes\" with kvm = \"none\": TCG in every pod"
	if k.KVM != "none" {
		if c.Guest.Accel == qemu.AccelTCG {
			reason = "forced by the spec (guest.accel = \"tcg\")"
		} else {
			accel, reason = qemu.AccelKVM, fmt.Sprintf("/dev/kvm from the node (kvm = %q)", k.KVM)
		}
	} else if c.Guest.Accel == qemu.AccelKVM {
		return nil, fmt.Errorf("cluster %q: guest.accel = \"kvm\" but runtime \"kubernetes\" has kvm = \"none\": set kvm to device-plugin or host-path", c.Name)
	}
	p, err := plan.Build(&pc, plan.Inputs{StateDir: PodStateDir, Accel: accel, AccelReason: reason})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// startScript is what a guest's pod runs: make the overlay on first start
// (it lives on the guest's claim, so it survives pod restarts and
// rescheduling), make the monitor FIFOs the preStop hook powers the guest
// down through, and run QEMU.
//
// The shell stays the container's PID 1 instead of becoming QEMU: the
// preStop hook runs inside the container's PID namespace, so if QEMU were
// PID 1 its exit would kill the hook mid-wait and the kubelet would record
// every clean power-down as a FailedPreStopHook. The shell waits for QEMU,
// gives the hook a moment to see it gone and return, and exits with QEMU's
// status; the kubelet's SIGTERM (after the hook, or on its own) is passed
// to QEMU, which quits at once.
func startScript(g plan.Guest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# guest %s (index %d)\nset -e\nmkdir -p %s\n", g.Name, g.Index, shq(g.Dir))
	if g.Overlay != "" {
		fmt.Fprintf(&b, "[ -e %s ] || qemu-img create -q -f qcow2 -F qcow2 -b %s %s\n", shq(g.Overlay), shq(g.BaseDisk), shq(g.Overlay))
	}
	hmp := path.Join(g.Dir, "hmp")
	fmt.Fprintf(&b, "rm -f %s.in %s.out && mkfifo %s.in %s.out\nset +e\n", shq(hmp), shq(hmp), shq(hmp), shq(hmp))
	b.WriteString(shq(g.Program))
	args := append(append([]string{}, g.Args...),
		// A human monitor on FIFOs: the preStop hook needs only sh to
		// press the power button (no QMP client in the image).
		"-chardev", "pipe,id=hmp0,path="+hmp, "-mon", "chardev=hmp0,mode=readline")
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			b.WriteString(" \\\n  " + a)
		} else {
			b.WriteString(" " + shq(a))
		}
	}
	fmt.Fprintf(&b, " &\nq=$!\necho $q > %s\n", shq(path.Join(g.Dir, "pod-qemu.pid")))
	b.WriteString(`trap 'kill -TERM $q 2>/dev/null' TERM INT
s=0
while kill -0 $q 2>/dev/null; do wait $q; s=$?; done
sleep 2
exit $s
`)
	return b.String()
}

// preStop presses the guest's ACPI power button and waits for QEMU to go;
// the kubelet ends the wait at terminationGracePeriodSeconds. The button
// is pressed again every 5 s: a guest ignores a press until its button
// driver and whatever acts on it are up (the test guest's agent opens
// its input devices after boot; Windows while it is starting), so one
// press in a guest still booting would be lost. The FIFO is opened
// read-write, which never blocks: a write-only open with QEMU gone would
// wait for a reader for the whole grace.
func preStop(grace int64) []string {
	dir := PodStateDir + "/guests/$LOCO_INDEX"
	return []string{"/bin/sh", "-c", fmt.Sprintf(
		`q=$(cat %[1]s/pod-qemu.pid) || exit 0; exec 3<>%[1]s/hmp.in; i=0; while [ $i -lt %[2]d ] && kill -0 $q 2>/dev/null; do [ $((i %% 5)) -eq 0 ] && echo system_powerdown >&3; sleep 1; i=$((i+1)); done; exit 0`, dir, grace)}
}

func statefulSet(c *spec.Cluster, p *plan.Plan, meta metav1.ObjectMeta, labels map[string]string, cms []*corev1.ConfigMap, planHash string, replicas int) (*appsv1.StatefulSet, error) {
	k := c.Runtime.Kube
	grace := int64(c.Runtime.StopGrace.Seconds())
	// The pod template is shared by every guest, so it asks for the
	// largest guest's memory and CPUs.
	maxMem, maxCPU := 0, 0
	for _, g := range p.Guests {
		maxMem, maxCPU = max(maxMem, g.MemoryMiB), max(maxCPU, g.CPUs)
	}
	mem := resource.MustParse(fmt.Sprintf("%dMi", maxMem+podOverheadMiB))
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: mem, corev1.ResourceCPU: resource.MustParse(strconv.Itoa(maxCPU))},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: mem},
	}
	overlaySize, err := resource.ParseQuantity(k.OverlaySize)
	if err != nil {
		return nil, fmt.Errorf("overlay_size %q: %w", k.OverlaySize, err)
	}

	var sources []corev1.VolumeProjection
	for _, cm := range cms {
		keys := make([]string, 0, len(cm.Data))
		for key := range cm.Data {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		sources = append(sources, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}})
	}
	volumes := []corev1.Volume{{Name: "plan", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources}}}}
	mounts := []corev1.VolumeMount{
		{Name: "overlay", MountPath: PodStateDir + "/guests"},
		{Name: "plan", MountPath: podPlanDir, ReadOnly: true},
	}
	base := corev1.Volume{Name: "base"}
	switch bv := k.BaseVolume; bv.Kind {
	case "pvc":
		base.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: bv.Claim, ReadOnly: true}
	case "host-path":
		base.HostPath = &corev1.HostPathVolumeSource{Path: bv.Path, Type: ptr(corev1.HostPathDirectory)}
	case "nfs":
		base.NFS = &corev1.NFSVolumeSource{Server: bv.Server, Path: bv.Path, ReadOnly: true}
	default:
		return nil, fmt.Errorf("base volume kind %q: not one of pvc, host-path, nfs", bv.Kind)
	}
	volumes = append(volumes, base)
	mounts = append(mounts, corev1.VolumeMount{Name: "base", MountPath: PodBaseDir, ReadOnly: true})
	if k.Image == spec.DefaultKubeImage {
		// The containerd runtime's skeleton image has no /usr of its own:
		// the node's, with QEMU installed, is bound read-only.
		volumes = append(volumes, corev1.Volume{Name: "host-usr", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/usr", Type: ptr(corev1.HostPathDirectory)}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "host-usr", MountPath: "/usr", ReadOnly: true})
	}
	var sc *corev1.SecurityContext
	switch k.KVM {
	case "device-plugin":
		res.Requests[KVMResource] = resource.MustParse("1")
		res.Limits[KVMResource] = resource.MustParse("1")
	case "host-path":
		volumes = append(volumes, corev1.Volume{Name: "kvm", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/dev/kvm", Type: ptr(corev1.HostPathCharDev)}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "kvm", MountPath: "/dev/kvm"})
		// A hostPath device node is usable only from a privileged
		// container (the device cgroup denies it otherwise).
		sc = &corev1.SecurityContext{Privileged: ptr(true)}
	}

	claimLabels := map[string]string{LabelCluster: c.Name, LabelManaged: "loco"}
	claim := corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: "overlay", Labels: claimLabels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: overlaySize}},
		},
	}
	if k.StorageClass != "" {
		claim.Spec.StorageClassName = ptr(k.StorageClass)
	}
	one := intstr.FromInt32(1)
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: meta,
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr(int32(replicas)),
			ServiceName: c.Name,
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			// Guests are independent: boot them all at once.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: &one}},
			// Disks outlive scaling to zero (loco stop) and the
			// StatefulSet itself; loco stop --destroy deletes them.
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{AnnotationAccel: p.Accel, AnnotationPlan: planHash}},
				Spec: corev1.PodSpec{
					// The power button, then the wait, then a margin for the
					// kubelet's SIGTERM to QEMU (which quits at once).
					TerminationGracePeriodSeconds: ptr(grace + 5),
					EnableServiceLinks:            ptr(false),
					AutomountServiceAccountToken:  ptr(false),
					Containers: []corev1.Container{{
						Name:    "qemu",
						Image:   k.Image,
						Command: []string{"/bin/sh", podPlanDir + "/$(LOCO_INDEX).sh"},
						Env: []corev1.EnvVar{{Name: "LOCO_INDEX", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + podIndexLabel + "']"}}}},
						Resources:       res,
						VolumeMounts:    mounts,
						SecurityContext: sc,
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
							Exec: &corev1.ExecAction{Command: preStop(grace)}}},
					}},
					Volumes: volumes,
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{claim},
		},
	}, nil
}

func ptr[T any](v T) *T { return &v }

func shq(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
