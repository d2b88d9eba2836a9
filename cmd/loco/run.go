package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/locolan/loco/core/api"
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
keeps their disks. With --detach, loco keeps running in the background and
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
			cl, err := cluster.Open(c, cluster.Options{Log: log, From: from})
			if err != nil {
				return err
			}
			defer cl.Close()
			lis, err := net.Listen("tcp", c.API.Listen)
			if err != nil {
				return fmt.Errorf("the API cannot listen on %s (api.listen): %w", c.API.Listen, err)
			}
			defer lis.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			diags, err := cl.Up(ctx)
			if len(diags) > 0 {
				printDiags(cmd.ErrOrStderr(), l, diags)
			}
			if err != nil || diags.HasErrors() {
				downCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
				cl.Down(downCtx)
				cancel()
				if err != nil {
					return err
				}
				return exitError{1}
			}
			apiDone := api.New(cl, cl.Token, log).Serve(ctx, lis)
			addr := lis.Addr()
			if err := cl.SetAPIAddr(addr.String()); err != nil {
				log.Warn("could not record the API address", "err", err)
			}
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
				fmt.Fprintln(cmd.OutOrStdout(), "ready")
			}
			live(ctx, cmd.OutOrStdout(), cl, header, tty, daemon, apiDone)
			stop()
			fmt.Fprintln(cmd.OutOrStdout(), "stopping guests...")
			downCtx, cancel := context.WithTimeout(context.Background(), c.Runtime.StopGrace+2*time.Minute)
			defer cancel()
			if err := cl.Down(downCtx); err != nil {
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

// runDetached starts `loco run --daemon` in its own session, logging to the
// state directory, and returns when it says ready (or fails with its log).
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
	d := exec.Command(exe, args...)
	d.Stdout, d.Stderr = logf, logf
	d.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := d.Start(); err != nil {
		return fmt.Errorf("starting loco in the background: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	for {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logf.Name())
			cmd.PrintErr(string(out))
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return exitError{ee.ExitCode()}
			}
			return fmt.Errorf("background loco exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		out, _ := os.ReadFile(logf.Name())
		if strings.Contains(string(out), "\nready\n") {
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, "cluster ") || strings.HasPrefix(line, "api: ") || strings.HasPrefix(line, "dashboard: ") || strings.HasPrefix(line, "logs: ") || strings.HasPrefix(line, "guest ") {
					fmt.Fprintln(cmd.OutOrStdout(), line)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "loco runs in the background (pid %d); `loco status` shows the guests, `loco stop` stops them\n", d.Process.Pid)
			d.Process.Release()
			return nil
		}
	}
}
