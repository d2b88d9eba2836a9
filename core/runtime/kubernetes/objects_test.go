package kubernetes

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/core/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func load(t testing.TB, file string, vars map[string]string) *spec.Cluster {
	t.Helper()
	l := spec.NewLoader()
	l.Vars = vars
	c, diags := l.Load(file)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return c
}

// TestRenderGolden pins the objects for a spec with every kind of choice
// made (claim for the base, storage class, device-plugin KVM, an instance
// override).
func TestRenderGolden(t *testing.T) {
	c := load(t, "testdata/lan.hcl", nil)
	o, err := Build(c, c.Instances)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, o); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "lan.yaml")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./core/runtime/kubernetes -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("render differs from %s; rerun with -update if the change is intended.\ngot:\n%s", golden, buf.String())
	}
	// The largest guest sizes the shared pod template.
	if got := o.StatefulSet.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); got != fmt.Sprintf("%dMi", 256+podOverheadMiB) {
		t.Errorf("memory limit %s, want the largest guest's 256 MiB + overhead", got)
	}
	if _, ok := o.StatefulSet.Spec.Template.Spec.Containers[0].Resources.Limits[KVMResource]; !ok {
		t.Errorf("kvm = device-plugin but no %s limit", KVMResource)
	}
	if o.Plan.Accel != "kvm" {
		t.Errorf("accel %s with kvm = device-plugin", o.Plan.Accel)
	}
}

func writeSpec(t testing.TB, runtime string, instances int) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	p := filepath.Join(dir, "c.hcl")
	os.WriteFile(p, []byte(fmt.Sprintf(`cluster "big" {
  instances = %d
  image {
    kernel = "vmlinuz"
    initrd = "initrd.img"
  }
  runtime "kubernetes" {
%s
  }
}
`, instances, runtime)), 0o644)
	return p
}

// TestBigPlanSplitsConfigMaps: a plan over one ConfigMap's size goes into
// several, all projected into the one plan directory.
func TestBigPlanSplitsConfigMaps(t *testing.T) {
	c := load(t, writeSpec(t, `base_volume = "nfs:files.lan:/exports/loco"`, 1000), nil)
	o, err := Build(c, c.Instances)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.ConfigMaps) < 2 {
		t.Fatalf("%d ConfigMaps for 1,000 guests", len(o.ConfigMaps))
	}
	keys := 0
	for _, cm := range o.ConfigMaps {
		size := 0
		for _, v := range cm.Data {
			size += len(v)
		}
		if size > maxConfigMapData {
			t.Errorf("ConfigMap %s holds %d bytes, more than %d", cm.Name, size, maxConfigMapData)
		}
		keys += len(cm.Data)
	}
	if keys != 1000 {
		t.Errorf("%d scripts for 1,000 guests", keys)
	}
	srcs := o.StatefulSet.Spec.Template.Spec.Volumes[0].Projected.Sources
	if len(srcs) != len(o.ConfigMaps) {
		t.Errorf("%d projected sources for %d ConfigMaps", len(srcs), len(o.ConfigMaps))
	}
	if nfs := o.StatefulSet.Spec.Template.Spec.Volumes[1].NFS; nfs == nil || nfs.Server != "files.lan" || !nfs.ReadOnly {
		t.Errorf("base volume %+v, want read-only NFS from files.lan", o.StatefulSet.Spec.Template.Spec.Volumes[1])
	}
	t.Logf("1,000 guests: %d ConfigMaps", len(o.ConfigMaps))
}

func TestKVMHostPathIsPrivilegedAndTCGIsNot(t *testing.T) {
	c := load(t, writeSpec(t, `base_volume = "host-path:/srv/loco"
    kvm = "host-path"`, 1), nil)
	o, err := Build(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctr := o.StatefulSet.Spec.Template.Spec.Containers[0]
	if ctr.SecurityContext == nil || ctr.SecurityContext.Privileged == nil || !*ctr.SecurityContext.Privileged {
		t.Error("kvm = host-path without a privileged container")
	}
	if !strings.Contains(strings.Join(o.Plan.Guests[0].Args, " "), "-accel kvm") {
		t.Errorf("kvm = host-path but the plan says %v", o.Plan.Guests[0].Args)
	}
	c = load(t, writeSpec(t, `base_volume = "host-path:/srv/loco"`, 1), nil)
	o, err = Build(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if o.StatefulSet.Spec.Template.Spec.Containers[0].SecurityContext != nil {
		t.Error("a TCG guest's container has a security context")
	}
	if o.StatefulSet.Spec.Template.Annotations[AnnotationAccel] != "tcg" {
		t.Errorf("accel annotation %q, want tcg", o.StatefulSet.Spec.Template.Annotations[AnnotationAccel])
	}
}

// TestStopGraceShapesTermination: preStop waits stop_grace and the pod's
// grace period leaves room after it.
func TestStopGraceShapesTermination(t *testing.T) {
	c := load(t, "testdata/lan.hcl", nil)
	o, err := Build(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if *o.StatefulSet.Spec.Replicas != 0 {
		t.Errorf("replicas %d, want 0", *o.StatefulSet.Spec.Replicas)
	}
	ps := o.StatefulSet.Spec.Template.Spec
	if got := time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second; got <= c.Runtime.StopGrace {
		t.Errorf("terminationGracePeriodSeconds %v not beyond stop_grace %v", got, c.Runtime.StopGrace)
	}
	cmd := strings.Join(ps.Containers[0].Lifecycle.PreStop.Exec.Command, " ")
	if !strings.Contains(cmd, "system_powerdown") || !strings.Contains(cmd, "-lt 20 ") {
		t.Errorf("preStop %q does not press the power button and wait 20 s", cmd)
	}
}

func TestPluginsAreRefusedClearly(t *testing.T) {
	c := load(t, "testdata/lan.hcl", nil)
	c.Plugins = append(c.Plugins, spec.PluginUse{Kind: "network", Name: "vxlan"})
	_, err := Build(c, 1)
	if err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Fatalf("plugins with runtime kubernetes: %v, want not supported yet", err)
	}
}

// BenchmarkRender1000 is `loco render` of 1,000 guests: build and YAML.
func BenchmarkRender1000(b *testing.B) {
	c := load(b, writeSpec(b, `base_volume = "pvc:base"`, 1000), nil)
	for b.Loop() {
		o, err := Build(c, c.Instances)
		if err != nil {
			b.Fatal(err)
		}
		if err := Render(&bytes.Buffer{}, o); err != nil {
			b.Fatal(err)
		}
	}
}
