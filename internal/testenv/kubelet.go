package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

// PauseImage is the pod sandbox image the test kubelet's containerd uses:
// Debian's static busybox sleeping (registry.k8s.io's pause cannot be
// pulled here). It is built and imported by StartKubelet.
const PauseImage = "loco.local/pause:1"

// CRINamespace is the containerd namespace the CRI plugin keeps images in.
const CRINamespace = "k8s.io"

// Kubelet is a real kubelet (from hack/go.mod) registered as node
// "kubelet-0" of a test control plane, running pods in its own private
// containerd with the CRI plugin on. What makes it run on this machine:
//   - cgroup v1: failCgroupV1 false; cgroupsPerQOS false, so it creates no
//     cgroup hierarchy of its own on a shared host.
//   - no CAP_SYS_RESOURCE (the sandbox cannot lower oom_score_adj):
//     containerd's restrict_oom_score_adj.
//   - no pod network: a CNI plugin (a shell script, below) that gives
//     each pod only lo and a veth pair inside its own network namespace,
//     with a link-local address; nothing is created on the host.
//   - no registry: the sandbox image is built from busybox and imported.
//
// The node's address is refused by the kubelet (loopback), so `kubectl
// logs`/exec do not work; pods run.
type Kubelet struct {
	Dir        string
	Containerd string // the CRI socket
	Node       string
	kube       *Kube
	cd, kl     *kubeProc
	// netnsBefore is /run/netns before the CRI made any sandbox: what is
	// new at the end is this test's.
	netnsBefore map[string]bool
	// cgroupsBefore is the containers' cgroups (runc makes them under
	// k8s.io in each hierarchy) before this kubelet ran.
	cgroupsBefore map[string]bool
}

// criCgroups is where runc puts the CRI's containers on this cgroup v1
// machine (the kubelet has cgroupsPerQOS false, so no pod parent): one
// directory per container, in every hierarchy.
const criCgroups = "/sys/fs/cgroup/pids/k8s.io"

func listCgroups() map[string]bool {
	m := map[string]bool{}
	ents, _ := os.ReadDir(criCgroups)
	for _, e := range ents {
		if e.IsDir() {
			m[e.Name()] = true
		}
	}
	return m
}

// reapCgroups kills every process in a container cgroup this kubelet's
// containers made and removes the cgroups, in every hierarchy: what the
// shims' trees missed (a process that left its parent) cannot leave its
// cgroup.
func (kl *Kubelet) reapCgroups() {
	for id := range listCgroups() {
		if kl.cgroupsBefore[id] {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(criCgroups, id, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				KillTree(pid)
			}
		}
		hs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "k8s.io", id))
		for _, h := range hs {
			for i := 0; i < 50; i++ {
				if err := os.Remove(h); err == nil || os.IsNotExist(err) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// StartKubelet starts containerd (CRI) and a kubelet for the control plane
// and stops both (and every pod container) when the test ends.
func (k *Kube) StartKubelet() *Kubelet {
	k.t.Helper()
	bin := KubeBinaries(k.t)
	dir, err := os.MkdirTemp("", "lkl")
	if err != nil {
		k.t.Fatal(err)
	}
	reapStaleShims()
	kl := &Kubelet{Dir: dir, Containerd: filepath.Join(dir, "c.sock"), Node: "kubelet-0", kube: k, netnsBefore: map[string]bool{}, cgroupsBefore: listCgroups()}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		kl.netnsBefore[e.Name()] = true
	}
	k.t.Cleanup(kl.stop)
	if err := kl.start(bin); err != nil {
		k.t.Fatal(err)
	}
	return kl
}

const lonePodCNI = `#!/bin/sh
# A CNI plugin for pods that need no network beyond their own: in the pod's
# network namespace it brings lo up and makes IFNAME one end of a veth pair
# whose other end stays in the same namespace, with a link-local address.
# Nothing is created on the host; no packet leaves the pod.
cat >/dev/null
case "$CNI_COMMAND" in
ADD)
	n=$(( $(od -An -N1 -tu1 /dev/urandom) % 250 + 2 ))
	nsenter --net="$CNI_NETNS" sh -c "ip link set lo up && ip link add $CNI_IFNAME type veth peer name ${CNI_IFNAME}p && ip addr add 169.254.87.$n/32 dev $CNI_IFNAME && ip link set ${CNI_IFNAME}p up && ip link set $CNI_IFNAME up" >&2 || exit 1
	printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"address":"169.254.87.%s/32","interface":0}]}' "$CNI_IFNAME" "$CNI_NETNS" "$n" ;;
VERSION)
	printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
esac
`

func (kl *Kubelet) path(name string) string { return filepath.Join(kl.Dir, name) }

func (kl *Kubelet) start(bin string) error {
	for _, d := range []string{"cnibin", "cni", "root", "state", "opt", "kubelet"} {
		if err := os.MkdirAll(kl.path(d), 0o755); err != nil {
			return err
		}
	}
	loopback := "/usr/lib/cni/loopback"
	if _, err := os.Stat(loopback); err != nil {
		return fmt.Errorf("Debian's containernetworking-plugins is not installed (make test installs it): %w", err)
	}
	if err := os.Symlink(loopback, kl.path("cnibin/loopback")); err != nil {
		return err
	}
	if err := os.WriteFile(kl.path("cnibin/loco-lone"), []byte(lonePodCNI), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(kl.path("cni/10-lone.conflist"), []byte(`{"cniVersion": "1.0.0", "name": "loco-lone", "plugins": [{"type": "loco-lone"}]}`), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
`, kl.path("root"), kl.path("state"), kl.Containerd, kl.Containerd+".ttrpc", kl.path("opt"), PauseImage, kl.path("cnibin"), kl.path("cni"))
	if err := os.WriteFile(kl.path("containerd.toml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	cd, err := kl.kube.runIn(kl.Dir, "containerd", "containerd", "--config", kl.path("containerd.toml"))
	if err != nil {
		return err
	}
	kl.cd = cd
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kl.importPause(ctx); err != nil {
		return err
	}

	k := kl.kube
	name := "node-" + kl.Node
	if err := k.issue(name, "system:node:"+kl.Node, []string{"system:nodes"}, nil, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}
	if err := k.writeKubeconfig(kl.path("kubeconfig"), name); err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: %q}}
authorization: {mode: AlwaysAllow}
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
containerRuntimeEndpoint: unix://%s
serializeImagePulls: false
localStorageCapacityIsolation: false
imageGCHighThresholdPercent: 100
evictionHard: {}
`, k.path("ca.crt"), ports[0], kl.Containerd)
	if err := os.WriteFile(kl.path("kubelet.yaml"), []byte(conf), 0o600); err != nil {
		return err
	}
	p, err := k.runIn(kl.Dir, "kubelet", filepath.Join(bin, "kubelet"), "--config="+kl.path("kubelet.yaml"),
		"--kubeconfig="+kl.path("kubeconfig"), "--root-dir="+kl.path("kubelet"),
		"--hostname-override="+kl.Node, "--v=1")
	if err != nil {
		return err
	}
	kl.kl = p
	return nil
}

// Client connects to the kubelet's containerd, in the CRI's namespace:
// images imported through it are what pods can run without a registry.
func (kl *Kubelet) Client(ctx context.Context) (*containerd.Client, context.Context, error) {
	c, err := containerd.New(kl.Containerd, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the kubelet's containerd: %w", err)
	}
	return c, namespaces.WithNamespace(ctx, CRINamespace), nil
}

func (kl *Kubelet) importPause(ctx context.Context) error {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("the pause image is made of Debian's busybox-static (make test installs it): %w", err)
	}
	archive, err := ociArchive(PauseImage, map[string][]byte{"busybox": bb}, []string{"/busybox", "sleep", "2147483647"})
	if err != nil {
		return err
	}
	var c *containerd.Client
	for start := time.Now(); ; {
		c, err = containerd.New(kl.Containerd, containerd.WithTimeout(2*time.Second))
		if err == nil {
			if _, err = c.Version(ctx); err == nil {
				break
			}
			c.Close()
		}
		if time.Since(start) > 30*time.Second {
			return fmt.Errorf("the kubelet's containerd did not answer: %v\n%s", err, tail(kl.cd.log))
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer c.Close()
	if _, err := c.Import(namespaces.WithNamespace(ctx, CRINamespace), bytes.NewReader(archive)); err != nil {
		return fmt.Errorf("importing %s: %w", PauseImage, err)
	}
	return nil
}

// ociArchive is a one-layer OCI image layout archive of the files given.
func ociArchive(name string, files map[string][]byte, entrypoint []string) ([]byte, error) {
	digest := func(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for n, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(b))}); err != nil {
			return nil, err
		}
		tw.Write(b)
	}
	tw.Close()
	l := layer.Bytes()
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint}, "rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(l)}}})
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(cfg), "size": len(cfg)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(l), "size": len(l)}}})
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(man), "size": len(man),
		"annotations": map[string]string{"org.opencontainers.image.ref.name": name, "io.containerd.image.name": name}}}})
	var out bytes.Buffer
	w := tar.NewWriter(&out)
	add := func(n string, b []byte) {
		w.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b))})
		w.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", idx)
	for _, b := range [][]byte{l, cfg, man} {
		add("blobs/sha256/"+digest(b)[7:], b)
	}
	return out.Bytes(), w.Close()
}

func (kl *Kubelet) stop() {
	// The kubelet first (it would restart what containerd stops), then
	// every task left in containerd, then containerd.
	for _, p := range []*kubeProc{kl.kl, kl.cd} {
		if p == nil {
			continue
		}
		if p == kl.cd {
			kl.killTasks()
		}
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// What containerd did not stop (a task it lost track of, a test that
	// failed before the kubelet was up): every shim of this containerd
	// and the pods' processes under it, found by the shim's -address.
	for _, pid := range pidsWithArg(kl.Containerd) {
		KillTree(pid)
	}
	kl.reapCgroups()
	if kl.kube.t.Failed() {
		for _, p := range []*kubeProc{kl.kl, kl.cd} {
			if p != nil {
				kl.kube.t.Logf("%s log:\n%s", p.name, tail(p.log))
			}
		}
	}
	kl.unmountAndRemove()
	// The CRI puts sandboxes' network namespaces in /run/netns; a killed
	// sandbox leaves its entry.
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if !kl.netnsBefore[e.Name()] && strings.HasPrefix(e.Name(), "cni-") {
			p := filepath.Join("/run/netns", e.Name())
			syscall.Unmount(p, syscall.MNT_DETACH)
			os.Remove(p)
		}
	}
}

// reapStaleShims kills the containerd shims (and the pods' processes under
// them) of earlier test kubelets whose containerd is gone: a test binary
// killed mid-test (a -timeout panic runs no cleanup) stops its kubelet and
// containerd by Pdeathsig, but a shim is no child of the test and lives
// on. Its directory is removed too.
func reapStaleShims() {
	reaped := false
	for _, pid := range pidsWithArg("-address") {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" {
			continue
		}
		for i, a := range args[:len(args)-1] {
			addr := args[i+1]
			if a != "-address" || !strings.HasPrefix(addr, filepath.Join(os.TempDir(), "lkl")) || filepath.Base(addr) != "c.sock" {
				continue
			}
			dir := filepath.Dir(addr)
			if len(pidsWithArg(filepath.Join(dir, "containerd.toml"))) == 0 {
				KillTree(pid)
				(&Kubelet{Dir: dir}).unmountAndRemove()
				reaped = true
			}
		}
	}
	if !reaped {
		return
	}
	// The killed containers' cgroups: only empty ones can be removed, so
	// a live container's is never touched.
	time.Sleep(200 * time.Millisecond)
	hs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "k8s.io", "*"))
	for _, h := range hs {
		if fi, err := os.Stat(h); err == nil && fi.IsDir() {
			os.Remove(h)
		}
	}
}

// unmountAndRemove removes Dir: sandboxes' rootfs and shm mounts live
// under it, so what is left is unmounted first.
func (kl *Kubelet) unmountAndRemove() {
	out, _ := exec.Command("sh", "-c", "grep -o ' "+kl.Dir+"/[^ ]*' /proc/self/mounts | sort -r").Output()
	for _, m := range bytes.Fields(out) {
		syscall.Unmount(string(m), syscall.MNT_DETACH)
	}
	os.RemoveAll(kl.Dir)
}

// killTasks kills every task in the CRI namespace so no shim or QEMU
// outlives the test.
func (kl *Kubelet) killTasks() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, ctx, err := kl.Client(ctx)
	if err != nil {
		return
	}
	defer c.Close()
	ctrs, _ := c.Containers(ctx)
	for _, ctr := range ctrs {
		if task, err := ctr.Task(ctx, nil); err == nil {
			task.Kill(ctx, syscall.SIGKILL)
			if ch, err := task.Wait(ctx); err == nil {
				select {
				case <-ch:
				case <-time.After(5 * time.Second):
				}
			}
			task.Delete(ctx)
		}
		ctr.Delete(ctx)
	}
}
