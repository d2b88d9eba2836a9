package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/spec"
)

// CheckHost finds what in the spec this host cannot do, before anything
// runs: a machine type its QEMU lacks, more memory for one guest than the
// host has, a state directory (from $LOCO_STATE_DIR) that QEMU options
// cannot take. validate, plan and run all ask it, so the spec's mistakes
// come with their file:line:col rather than as QEMU's words at boot.
func CheckHost(ctx context.Context, c *spec.Cluster) hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(at *hcl.Range, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: at})
	}
	if c.StateDir == "" {
		if err := qemu.CheckOptionPath(plan.DefaultStateDir(c)); err != nil {
			bad(c.At(""), "State directory QEMU cannot take", fmt.Sprintf("the state directory (from $LOCO_STATE_DIR or the default): %v; set state_dir or LOCO_STATE_DIR elsewhere.", err))
		}
	}
	if machine := c.Guest.Machine; machine != "" && qemu.CheckMachineName(machine) == nil {
		types, err := qemu.MachineTypes(ctx, "")
		switch {
		case err != nil:
			bad(c.At("guest.machine"), "Cannot check the machine type", err.Error())
		case !slices.Contains(types, machine):
			bad(c.At("guest.machine"), "Unknown machine type",
				fmt.Sprintf("machine = %q: this host's QEMU has no such machine type; `qemu-system-x86_64 -machine help` lists them (e.g. %s).", machine, strings.Join(firstN(types, 6), ", ")))
		}
	}
	if total, err := hostMemoryMiB(); err == nil {
		sum := 0
		for i := 0; i < c.Instances; i++ {
			g := c.GuestFor(i)
			sum += g.MemoryMiB
			if g.MemoryMiB <= total {
				continue
			}
			at := c.At("guest.memory")
			if _, ok := c.Where[fmt.Sprintf("instance.%d.memory", i)]; ok {
				at = c.At(fmt.Sprintf("instance.%d.memory", i))
			}
			bad(at, "More memory than the host has",
				fmt.Sprintf("memory = %d MiB for guest %d, but this host has %d MiB in all.", g.MemoryMiB, i, total))
			break
		}
		if !diags.HasErrors() && sum > total {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "The guests may need more memory than the host has",
				Detail:  fmt.Sprintf("%d guests with %d MiB in all, on a host with %d MiB: they boot, but may swap or be killed once they use it.", c.Instances, sum, total),
				Subject: c.At("guest.memory")})
		}
	}
	return diags
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }

// hostMemoryMiB is MemTotal from /proc/meminfo.
func hostMemoryMiB() (int, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				return 0, fmt.Errorf("reading MemTotal: %w", err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
}
