package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/locolan/loco/sdk/qmp"
)

// Internal snapshots: a guest's whole state (RAM, devices and the disk as it
// was) kept inside its qcow2 overlay under a tag, saved over QMP while the
// guest runs and restored by starting QEMU with -loadvm TAG. The disk state
// is part of the snapshot, so RAM and disk always agree after a restore.
// docs/architecture.md says why this and not migration to a file.

// snapshotNameRE keeps tags safe for QEMU's option syntax (no commas, no
// spaces) and for file names (the cluster keeps a NAME.json per snapshot).
var snapshotNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckSnapshotName says why name cannot be a snapshot tag, or nil.
func CheckSnapshotName(name string) error {
	if !snapshotNameRE.MatchString(name) {
		return fmt.Errorf("snapshot name %q: use 1-63 letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// ImageSnapshot is an internal snapshot recorded in a qcow2 image.
type ImageSnapshot struct {
	ID   string
	Name string
	// VMStateSize is the bytes of RAM and device state; 0 for a disk-only
	// snapshot (qemu-img snapshot -c), which cannot be restored with -loadvm.
	VMStateSize int64
	Date        time.Time
	// VMClock is how long the guest had run when it was saved.
	VMClock time.Duration
}

// ImageSnapshots lists the internal snapshots of a qcow2 image. It works
// while a guest runs on the image (qemu-img -U).
func ImageSnapshots(ctx context.Context, qemuImg, path string) ([]ImageSnapshot, error) {
	out, err := runTool(ctx, or(qemuImg, DefaultQEMUImg), "info", "-U", "--output=json", path)
	if err != nil {
		return nil, fmt.Errorf("listing the snapshots of %s: %w", path, err)
	}
	var raw struct {
		Snapshots []struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			VMStateSize int64  `json:"vm-state-size"`
			DateSec     int64  `json:"date-sec"`
			DateNsec    int64  `json:"date-nsec"`
			VMClockSec  int64  `json:"vm-clock-sec"`
			VMClockNsec int64  `json:"vm-clock-nsec"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("listing the snapshots of %s: decoding qemu-img output: %w", path, err)
	}
	var snaps []ImageSnapshot
	for _, s := range raw.Snapshots {
		snaps = append(snaps, ImageSnapshot{ID: s.ID, Name: s.Name, VMStateSize: s.VMStateSize,
			Date:    time.Unix(s.DateSec, s.DateNsec),
			VMClock: time.Duration(s.VMClockSec)*time.Second + time.Duration(s.VMClockNsec)})
	}
	return snaps, nil
}

// DeleteImageSnapshot removes the snapshot tag from the image of a guest
// that is not running (QEMU holds a running guest's image locked; use
// DeleteVMSnapshot then). A missing tag is not an error.
func DeleteImageSnapshot(ctx context.Context, qemuImg, path, tag string) error {
	snaps, err := ImageSnapshots(ctx, qemuImg, path)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(snaps, func(s ImageSnapshot) bool { return s.Name == tag }) {
		return nil
	}
	if _, err := runTool(ctx, or(qemuImg, DefaultQEMUImg), "snapshot", "-d", tag, path); err != nil {
		return fmt.Errorf("deleting snapshot %q from %s: %w", tag, path, err)
	}
	return nil
}

// LoadVMArgs are the arguments that make QEMU start from snapshot tag of its
// disk instead of booting. QEMU exits at start if it cannot load it.
func LoadVMArgs(tag string) []string { return []string{"-loadvm", tag} }

// PauseVM stops the guest's CPUs (QMP stop); devices and timers stop with
// them, so a save that follows sees one instant.
func PauseVM(ctx context.Context, c *qmp.Client) error { return c.Run(ctx, "stop", nil, nil) }

// ResumeVM lets a paused guest run again (QMP cont).
func ResumeVM(ctx context.Context, c *qmp.Client) error { return c.Run(ctx, "cont", nil, nil) }

// SaveVMSnapshot saves the running QEMU's state as snapshot tag into its
// writable qcow2 disk (QMP snapshot-save; a tag already there is replaced).
// The guest is paused while it saves and left as it was found. A guest
// without a qcow2 disk cannot keep a snapshot and gets an error saying so.
func SaveVMSnapshot(ctx context.Context, c *qmp.Client, tag string) error {
	nodes, err := snapshotNodes(ctx, c)
	if err != nil {
		return err
	}
	if err := runSnapshotJob(ctx, c, "snapshot-delete", "loco-delete-"+tag, tag, nodes, false); err != nil {
		return err
	}
	return runSnapshotJob(ctx, c, "snapshot-save", "loco-save-"+tag, tag, nodes, true)
}

// DeleteVMSnapshot removes snapshot tag from the disk of a running QEMU
// (QMP snapshot-delete). A missing tag is not an error.
func DeleteVMSnapshot(ctx context.Context, c *qmp.Client, tag string) error {
	nodes, err := snapshotNodes(ctx, c)
	if err != nil {
		return err
	}
	return runSnapshotJob(ctx, c, "snapshot-delete", "loco-delete-"+tag, tag, nodes, false)
}

// snapshotNodes are the block nodes of the guest's writable disks; the first
// one also takes the RAM and device state.
func snapshotNodes(ctx context.Context, c *qmp.Client) ([]string, error) {
	var blocks []struct {
		Device   string `json:"device"`
		Inserted *struct {
			NodeName string `json:"node-name"`
			RO       bool   `json:"ro"`
			Image    struct {
				Format string `json:"format"`
			} `json:"image"`
		} `json:"inserted"`
	}
	if err := c.Run(ctx, "query-block", nil, &blocks); err != nil {
		return nil, fmt.Errorf("finding the guest's disks: %w", err)
	}
	var nodes []string
	for _, b := range blocks {
		if b.Inserted == nil || b.Inserted.RO {
			continue
		}
		if b.Inserted.Image.Format != "qcow2" {
			return nil, fmt.Errorf("disk %s is %s: only qcow2 disks can keep a snapshot", b.Device, b.Inserted.Image.Format)
		}
		nodes = append(nodes, b.Inserted.NodeName)
	}
	if len(nodes) == 0 {
		return nil, errors.New("the guest has no writable disk to keep a snapshot in: give its image a disk (image { disk = ... })")
	}
	return nodes, nil
}

// runSnapshotJob runs one of QEMU's snapshot jobs to its end and dismisses
// it. Unless strict, a job that fails because the tag is not there counts
// as done: deleting what is already gone is not an error.
func runSnapshotJob(ctx context.Context, c *qmp.Client, command, jobID, tag string, nodes []string, strict bool) error {
	args := map[string]any{"job-id": jobID, "tag": tag, "devices": nodes}
	if command == "snapshot-save" {
		args["vmstate"] = nodes[0]
	}
	// A job of the same id left over from an interrupted run blocks ours.
	_ = c.Run(ctx, "job-dismiss", map[string]string{"id": jobID}, nil)
	if err := c.Run(ctx, command, args, nil); err != nil {
		return fmt.Errorf("%s %q: %w", command, tag, err)
	}
	for {
		var jobs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := c.Run(ctx, "query-jobs", nil, &jobs); err != nil {
			return fmt.Errorf("%s %q: watching the job: %w", command, tag, err)
		}
		i := slices.IndexFunc(jobs, func(j struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}) bool {
			return j.ID == jobID
		})
		if i < 0 {
			return fmt.Errorf("%s %q: the job vanished", command, tag)
		}
		if j := jobs[i]; j.Status == "concluded" || j.Status == "null" {
			_ = c.Run(ctx, "job-dismiss", map[string]string{"id": jobID}, nil)
			if j.Error != "" && (strict || !strings.Contains(j.Error, "not found") && !strings.Contains(j.Error, "does not exist")) {
				return fmt.Errorf("%s %q: %s", command, tag, j.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %q: %w", command, tag, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// hostSideFlags are options that wire QEMU to the host (files, sockets,
// displays, backends) without changing what the guest sees, so they are
// left out of a hardware profile: the same guest restored from another
// state directory, or with another audio or network backend, is the same
// machine.
var hostSideFlags = map[string]bool{
	"-name": true, "-display": true, "-vnc": true, "-chardev": true, "-mon": true, "-qmp": true,
	"-pidfile": true, "-netdev": true, "-audiodev": true, "-loadvm": true, "-incoming": true,
	"-kernel": true, "-initrd": true, // their content is the image's identity, not the hardware's
}

// HardwareProfile is what in a QEMU argv defines the machine a saved state
// belongs to: machine type, accelerator, CPUs, memory, devices (the NIC with
// its MAC), disks (without their file), the kernel command line. A state
// loads only into the same profile, and a different one is how QEMU fails
// in obscure ways or, worse, loads and misbehaves. Unknown options are kept:
// when in doubt, the profile differs. Each entry is "FLAG VALUE" (or "FLAG").
func HardwareProfile(args []string) []string {
	var prof []string
	for i := 0; i < len(args); i++ {
		flag := normalizeFlag(args[i])
		val, hasVal := "", false
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			val, hasVal = args[i+1], true
			i++
		}
		if hostSideFlags[flag] {
			continue
		}
		if flag == "-drive" {
			val = dropOpt(val, "file")
		}
		if hasVal {
			prof = append(prof, flag+" "+val)
		} else {
			prof = append(prof, flag)
		}
	}
	return prof
}

// dropOpt removes key=... from a QEMU option string.
func dropOpt(opts, key string) string {
	var kept []string
	for _, p := range strings.Split(opts, ",") {
		if k, _, ok := strings.Cut(p, "="); ok && k == key {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, ",")
}
