package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/supervise"
)

func moreCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newRunCmd(g), newStatusCmd(g), newStopCmd(g), newLogsCmd(g), newPlanCmd(g), newMCPCmd(g), newLANCmd(g), newSnapshotCmd(g), newRenderCmd(g)}
}

func newRunCmd(g *globals) *cobra.Command {
	var sf specFlags
	var detach, daemon bool
	var from string
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Boot the cluster and keep it running",
		Long: `run starts the plugins the spec names, boots every guest (or reattaches to
guests that are already running), and supervises them: a guest that dies is
restarted with backoff. In a terminal it shows a live table of the guests;
Ctrl-C powers them down (ACPI, then quit after the runtime's stop_grace) and
keeps their disks, and so do SIGTERM and SIGHUP (a closed terminal). A
closed stdout or stderr (loco run | head -1) does not stop loco: it keeps
supervising and its output is dropped. With --detach, loco keeps running in the background and
returns once every guest has started; stop it with 'loco stop'.

With --from NAME every guest starts from snapshot NAME (loco snapshot save)
instead of booting, in well under a second; the spec's start_from does the
same per guest. A guest without a usable state in it boots cold, and run
says which guest did what. A snapshot saved against another base image or
hardware profile is refused and nothing starts.

The API listens on the spec's api.listen (default 127.0.0.1:7780) and wants
the bearer token printed at start (also in <state_dir>/api-token).`,
		Example: "  loco run configs/demo.hcl\n  loco run --detach --var guests=9 configs/demo.hcl\n  loco run --from lobby configs/demo.hcl",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if detach && !daemon {
				// A Kubernetes cluster runs detached anyway: run applies and
				// returns.
				if c, _, err := sf.load(io.Discard, args[0]); err == nil && c.Runtime.Kube != nil {
					return runKube(cmd, c, sf.vars)
				}
				return runDetached(cmd, args[0], sf.vars, from)
			}
			if daemon {
				claimReadyPipe()
			}
			// Before the first write: a broken stdout must not kill loco
			// at any point from here on.
			ctx, stop := runSignals(cmd.Context())
			defer stop()
			c, l, err := sf.load(cmd.ErrOrStderr(), args[0])
			if err != nil {
				return err
			}
			if c.Runtime.Kube != nil {
				return runKube(cmd, c, sf.vars)
			}
			dir := plan.DefaultStateDir(c)
			tty := !daemon && term.IsTerminal(int(os.Stdout.Fd()))
			log := g.log
			if tty || daemon {
				// The live table owns the terminal, or there is no terminal
				// at all (--detach): logs go to a file that outlives us.
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return err
				}
				f, err := os.OpenFile(filepath.Join(dir, "loco.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
				fmt.Fprintf(cmd.ErrOrStderr(), "logs: %s\n", f.Name())
			}
			if from != "" {
				if err := qemu.CheckSnapshotName(from); err != nil {
					return fmt.Errorf("--from: %w", err)
				}
			}
			cl, diags, err := cluster.Start(ctx, c, cluster.Options{Log: log, From: from})
			if len(diags) > 0 {
				printDiags(cmd.ErrOrStderr(), l, diags)
			}
			if cluster.IsSpecError(err) {
				return exitError{1}
			}
			if err != nil {
				return err
			}
			addr := cl.Addr
			header := fmt.Sprintf("cluster %s: %d guests, accelerator %s (%s)\napi: http://%s  token: %s\n",
				c.Name, c.Instances, cl.Plan().Accel, cl.Plan().AccelReason, addr, cl.Token)
			if _, ok := c.Plugin("stream"); ok {
				header += fmt.Sprintf("dashboard: http://%s/?token=%s\n", addr, cl.Token)
			}
			for _, r := range cl.StartReports() {
				header += r.String() + "\n"
			}
			fmt.Fprint(cmd.OutOrStdout(), header)
			if daemon {
				signalReady(header)
			}
			live(ctx, cmd.OutOrStdout(), cl.Cluster, header, tty, daemon, cl.APIDone)
			stop()
			fmt.Fprintln(cmd.OutOrStdout(), "stopping guests...")
			downCtx, cancel := context.WithTimeout(context.Background(), c.Runtime.StopGrace+2*time.Minute)
			defer cancel()
			if err := cl.Stop(downCtx); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "all guests stopped; disks kept")
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&detach, "detach", false, "keep running in the background; return once every guest has started")
	cmd.Flags().StringVar(&from, "from", "", "start every guest from this snapshot instead of booting it (see loco snapshot)")
	cmd.Flags().BoolVar(&daemon, "daemon", false, "internal: the background process of --detach")
	cmd.Flags().MarkHidden("daemon")
	return cmd
}

// live shows the guests until ctx ends: in a terminal the header and a table
// redrawn every second, otherwise the table again whenever it changes.
func live(ctx context.Context, w io.Writer, cl *cluster.Cluster, header string, tty, quiet bool, apiDone <-chan error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := ""
	for {
		if tty {
			fmt.Fprintf(w, "\033[H\033[2J%s\n%s\n(Ctrl-C stops the guests; their disks are kept)\n", header, guestTable(cl, true))
		} else if table := guestTable(cl, false); !quiet && table != last {
			// Without a terminal, print only when something changed.
			fmt.Fprint(w, table)
			last = table
		}
		select {
		case <-ctx.Done():
			return
		case err := <-apiDone:
			if err != nil {
				slog.Error("API server stopped", "err", err)
			}
			apiDone = nil
		case <-tick.C:
		}
	}
}

// guestTable renders the guests; the uptime column only when asked, since
// it changes every second.
func guestTable(cl *cluster.Cluster, uptime bool) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "GUEST\tSTATE\tPID\tACCEL\tRESTARTS")
	if uptime {
		fmt.Fprint(tw, "\tUPTIME")
	}
	fmt.Fprintln(tw)
	for _, g := range cl.Guests() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d", g.Name, g.State, g.PID, cl.Plan().Accel, g.Restarts)
		if uptime {
			up := "-"
			if g.State == supervise.Running {
				up = time.Since(g.Started).Truncate(time.Second).String()
			}
			fmt.Fprintf(tw, "\t%s", up)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return b.String()
}

// readyFD is the descriptor on which `loco run --daemon` finds the pipe
// to its parent (exec.Cmd.ExtraFiles[0]).
const readyFD = 3

// readyEnv names it, so that a daemon started some other way (by hand)
// writes to no descriptor it did not get.
const readyEnv = "LOCO_READY_FD"

// signalReady tells the `loco run --detach` that started this daemon that
// every guest has started and the API serves: the header, then EOF. The
// parent waits for it on the pipe, never on log text.
func signalReady(header string) {
	if readyPipe == nil {
		return
	}
	readyPipe.WriteString(header)
	readyPipe.Close()
	readyPipe = nil
}

// readyPipe is the daemon's end of the pipe, claimed before anything is
// spawned: close-on-exec, or a plugin or QEMU would hold it open and the
// parent would wait for its EOF forever.
var readyPipe *os.File

func claimReadyPipe() {
	if os.Getenv(readyEnv) != fmt.Sprint(readyFD) {
		return
	}
	os.Unsetenv(readyEnv)
	syscall.CloseOnExec(readyFD)
	readyPipe = os.NewFile(readyFD, "ready")
}

// awaitReady waits for the daemon's ready message on r: what it wrote
// before closing the pipe. A daemon that exits (or closes the pipe) without
// writing anything failed, whatever its log says.
func awaitReady(r io.Reader) (string, bool) {
	b, _ := io.ReadAll(r)
	return string(b), len(b) > 0
}

// runDetached starts `loco run --daemon` in its own session, logging to a
// temporary file, and returns once it says ready over an inherited pipe
// (or fails with its log).
func runDetached(cmd *cobra.Command, file string, vars []string, from string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"run", "--daemon", "--detach"}
	for _, v := range vars {
		args = append(args, "--var", v)
	}
	if from != "" {
		args = append(args, "--from", from)
	}
	args = append(args, file)
	logf, err := os.CreateTemp("", "loco-run-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(logf.Name())
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	d := exec.Command(exe, args...)
	d.Stdout, d.Stderr = logf, logf
	d.ExtraFiles = []*os.File{pw} // readyFD
	d.Env = append(os.Environ(), fmt.Sprintf("%s=%d", readyEnv, readyFD))
	d.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = d.Start()
	pw.Close() // the daemon holds the only write end now
	if err != nil {
		return fmt.Errorf("starting loco in the background: %w", err)
	}
	header, ready := awaitReady(pr)
	if !ready {
		err := d.Wait()
		out, _ := os.ReadFile(logf.Name())
		cmd.PrintErr(string(out))
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitError{ee.ExitCode()}
		}
		return fmt.Errorf("background loco closed its ready pipe without starting (exit: %v)", err)
	}
	out, _ := os.ReadFile(logf.Name())
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "logs: ") {
			fmt.Fprintln(cmd.OutOrStdout(), line)
		}
	}
	fmt.Fprint(cmd.OutOrStdout(), header)
	fmt.Fprintf(cmd.OutOrStdout(), "loco runs in the background (pid %d); `loco status` shows the guests, `loco stop` stops them\n", d.Process.Pid)
	d.Process.Release()
	return nil
}
