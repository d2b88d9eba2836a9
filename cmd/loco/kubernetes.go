package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/runtime/kubernetes"
	"github.com/locolan/loco/core/spec"
)

// kubeRecord is what `loco run` leaves in the state directory of a
// Kubernetes cluster, so `loco status NAME` and `loco stop NAME` find the
// spec (and its variables) again: the cluster itself lives in the API
// server.
type kubeRecord struct {
	SpecFile string   `json:"spec_file"`
	Vars     []string `json:"vars,omitempty"`
}

const kubeRecordFile = "kubernetes.json"

func newRenderCmd(g *globals) *cobra.Command {
	var sf specFlags
	var target string
	cmd := &cobra.Command{
		Use:   "render FILE --target kubernetes",
		Short: "Print the objects loco would apply, as YAML",
		Long: `render prints the Kubernetes objects 'loco run' applies for a spec with
runtime "kubernetes" (ConfigMaps with the guests' start scripts, a headless
Service, a StatefulSet with one pod and one overlay claim per guest), as one
YAML stream in apply order: the same bodies run sends. Review them or hand
them to your own GitOps. No cluster is contacted.`,
		Example: "  loco render cluster.hcl --target kubernetes > loco.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if target != "kubernetes" {
				return fmt.Errorf("--target %q: the only target is kubernetes", target)
			}
			c, _, err := sf.load(cmd.ErrOrStderr(), args[0])
			if err != nil {
				return err
			}
			if c.Runtime.Kube == nil {
				return fmt.Errorf("%s: render --target kubernetes needs runtime \"kubernetes\" { ... } in the spec (it has runtime %q)", args[0], c.Runtime.Driver)
			}
			o, err := kubernetes.Build(c, c.Instances)
			if err != nil {
				return err
			}
			return kubernetes.Render(cmd.OutOrStdout(), o)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&target, "target", "", "what to render for: kubernetes")
	cmd.MarkFlagRequired("target")
	return cmd
}

// runKube is `loco run` of a cluster with runtime "kubernetes": apply the
// objects, wait until the StatefulSet controller has made the pods, and
// return. The kubelet supervises the guests, not this process.
func runKube(cmd *cobra.Command, c *spec.Cluster, vars []string) error {
	o, err := kubernetes.Build(c, c.Instances)
	if err != nil {
		return err
	}
	kc, err := kubernetes.Connect(c.Runtime.Kube, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := kc.Apply(ctx, o); err != nil {
		return err
	}
	applied := time.Since(start)
	dir := plan.DefaultStateDir(c)
	if err := os.MkdirAll(dir, 0o700); err == nil {
		b, _ := json.Marshal(kubeRecord{SpecFile: c.File, Vars: vars})
		os.WriteFile(filepath.Join(dir, kubeRecordFile), b, 0o600)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "cluster %s: applied to namespace %s on %s in %v (field manager %s):\n", c.Name, o.Namespace, kc.Server, applied.Round(time.Millisecond), kubernetes.FieldManager)
	for _, obj := range o.List() {
		fmt.Fprintf(out, "  %s %s\n", obj.Kind, obj.Name)
	}
	if err := kc.WaitPods(ctx, o); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d pods created (accelerator %s: %s); `loco status %s` shows them\n", c.Instances, o.Plan.Accel, o.Plan.AccelReason, c.File)
	return nil
}

// kubeArg finds the Kubernetes cluster a status or stop argument names: a
// spec file with runtime "kubernetes", or a cluster name whose state
// directory has a kubeRecord. ok is false for other clusters.
func kubeArg(cmd *cobra.Command, sf *specFlags, args []string) (c *spec.Cluster, ok bool, err error) {
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		c, _, err := sf.load(cmd.ErrOrStderr(), arg)
		if err != nil {
			return nil, false, err
		}
		return c, c.Runtime.Kube != nil, nil
	}
	dir, err := cluster.StateDirFor(arg, func(string) (*spec.Cluster, error) { return nil, nil })
	if err != nil {
		// The ordinary path says what is missing.
		return nil, false, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, kubeRecordFile))
	if err != nil {
		return nil, false, nil
	}
	var rec kubeRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", filepath.Join(dir, kubeRecordFile), err)
	}
	rsf := specFlags{vars: append(rec.Vars, sf.vars...)}
	c, _, err = rsf.load(cmd.ErrOrStderr(), rec.SpecFile)
	if err != nil {
		return nil, false, fmt.Errorf("loading %s, the spec cluster %s was run from: %w", rec.SpecFile, arg, err)
	}
	return c, c.Runtime.Kube != nil, nil
}

func statusKube(cmd *cobra.Command, c *spec.Cluster, asJSON bool) error {
	kc, err := kubernetes.Connect(c.Runtime.Kube, nil)
	if err != nil {
		return err
	}
	ns := c.Runtime.Kube.Namespace
	guests, err := kc.Status(cmd.Context(), c.Name, ns, c.Instances)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Cluster   string                   `json:"cluster"`
			Runtime   string                   `json:"runtime"`
			Namespace string                   `json:"namespace"`
			Server    string                   `json:"server"`
			Guests    []kubernetes.GuestStatus `json:"guests"`
		}{c.Name, "kubernetes", ns, kc.Server, guests})
	}
	fmt.Fprintf(out, "cluster %s: runtime kubernetes, namespace %s on %s\n\n", c.Name, ns, kc.Server)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tPOD PHASE\tNODE\tRESTARTS\tACCEL\tDISK\tREASON")
	for _, gs := range guests {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", gs.Name, gs.Phase, dash(gs.Node), gs.Restarts, dash(gs.Accel), dash(gs.Claim), gs.Reason)
	}
	return tw.Flush()
}

// stopKube scales the StatefulSet to zero (the pods' preStop hooks power
// the guests down; the overlay claims stay), or with destroy deletes the
// objects and the claims.
func stopKube(cmd *cobra.Command, c *spec.Cluster, destroy bool) error {
	kc, err := kubernetes.Connect(c.Runtime.Kube, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	ns := c.Runtime.Kube.Namespace
	out := cmd.OutOrStdout()
	if destroy {
		deleted, err := kc.Destroy(ctx, c.Name, ns)
		for _, d := range deleted {
			fmt.Fprintf(out, "deleted %s\n", d)
		}
		if err != nil {
			return fmt.Errorf("destroying cluster %s in namespace %s: %w", c.Name, ns, err)
		}
		os.Remove(filepath.Join(plan.DefaultStateDir(c), kubeRecordFile))
		fmt.Fprintf(out, "cluster %s destroyed in namespace %s; the base volume is untouched\n", c.Name, ns)
		return nil
	}
	o, err := kubernetes.Build(c, 0)
	if err != nil {
		return err
	}
	if err := kc.Apply(ctx, o); err != nil {
		return err
	}
	fmt.Fprintf(out, "cluster %s: StatefulSet %s scaled to 0 in namespace %s; the guests power down within stop_grace (%v); disks kept\n", c.Name, c.Name, ns, c.Runtime.StopGrace)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
