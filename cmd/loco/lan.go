package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/gopacket/pcapgo"
	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/sdk"
)

func newLANCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lan",
		Short: "Inspect the guests' LAN: health, traffic, captures",
		Long: `lan talks to the loco that runs the cluster (its API, with the token from the
state directory) and through it to the network plugin.`,
	}
	cmd.AddCommand(newLANStatusCmd(g), newLANCaptureCmd(g))
	return cmd
}

// apiClient reaches the running loco's API for a FILE|CLUSTER argument.
func apiClient(cmd *cobra.Command, sf *specFlags, args []string) (*client.Client, error) {
	dir, err := stateDirArg(cmd, sf, args)
	if err != nil {
		return nil, err
	}
	base, token, err := cluster.APIEndpoint(dir)
	if err != nil {
		return nil, err
	}
	return client.New(base, token, nil), nil
}

func newLANStatusCmd(g *globals) *cobra.Command {
	var sf specFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [FILE|CLUSTER]",
		Short: "Show the LAN: each guest's addresses, link, reachability, RTT and traffic",
		Long: `status shows what the network plugin sees: per guest its MAC, the IPv4
addresses it used, whether it sent frames lately (LINK), whether it answers
the switch's ARP and ping probes (REACHABLE) and how fast (RTT), its traffic
by EtherType and drops; then who talks to whom (unicast frames, row to
column). It needs a running loco.`,
		Example: "  loco lan status\n  loco lan status demo --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd, &sf, args)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			st, err := c.LANStatus(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return writeLANStatus(cmd.OutOrStdout(), st)
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

func writeLANStatus(w io.Writer, st sdk.LANStatus) error {
	health := "healthy"
	if !st.Healthy {
		health = "UNHEALTHY"
	}
	fmt.Fprintf(w, "LAN %s: %s\n", health, st.Summary)
	if st.HostMAC != "" {
		dhcp := "DHCP off"
		if st.Subnet != "" {
			dhcp = "DHCP " + st.Subnet
		}
		fmt.Fprintf(w, "switch %s %s, %s\n", st.HostMAC, st.HostIP, dhcp)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tMAC\tIP\tLINK\tREACHABLE\tRTT\tRX FRAMES\tRX BYTES\tTX FRAMES\tTX BYTES\tDROPS")
	names := map[uint32]string{}
	types := map[string]bool{}
	for _, p := range st.Ports {
		names[p.Instance] = p.Name
		ip, link, reach, rtt := "-", "down", "no", "-"
		if len(p.IPs) > 0 {
			ip = strings.Join(p.IPs, ",")
		}
		if p.LinkUp {
			link = "up"
		}
		if p.Reachable {
			reach = "yes"
		}
		if p.RTTMillis > 0 {
			rtt = strconv.FormatFloat(p.RTTMillis, 'f', 2, 64) + "ms"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%d\n", p.Name, p.MAC, ip, link, reach, rtt,
			p.RxFrames, bytesHuman(p.RxBytes), p.TxFrames, bytesHuman(p.TxBytes), p.Drops)
		for k := range p.FramesByEtherType {
			types[k] = true
		}
	}
	tw.Flush()

	if len(types) > 0 {
		var ts []string
		for k := range types {
			ts = append(ts, k)
		}
		sort.Strings(ts)
		fmt.Fprintln(w, "\nFrames by EtherType (sent/received by the guest):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "GUEST\t%s\n", strings.Join(ts, "\t"))
		for _, p := range st.Ports {
			row := []string{p.Name}
			for _, k := range ts {
				row = append(row, fmt.Sprintf("%d/%d", p.RxByEtherType[k].Frames, p.TxByEtherType[k].Frames))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nUnicast frames (row sent to column):")
	matrix := map[[2]uint32]uint64{}
	for _, l := range st.Links {
		matrix[[2]uint32{l.From, l.To}] = l.Frames
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{""}
	for _, p := range st.Ports {
		head = append(head, p.Name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, from := range st.Ports {
		row := []string{from.Name}
		for _, to := range st.Ports {
			cell := "-"
			if from.Instance != to.Instance {
				cell = strconv.FormatUint(matrix[[2]uint32{from.Instance, to.Instance}], 10)
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()

	if len(st.Uplinks) > 0 {
		fmt.Fprintln(w, "\nUplinks (beyond this cluster):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER\tREACHABLE\tRTT\tLAST SEEN\tRX FRAMES\tRX BYTES\tTX FRAMES\tTX BYTES\tMACS BEHIND")
		for _, u := range st.Uplinks {
			reach, seen, macs, rtt := "no", "never", "-", "-"
			if u.RTTMillis > 0 {
				rtt = strconv.FormatFloat(u.RTTMillis, 'f', 2, 64) + "ms"
			}
			if u.Reachable {
				reach = "yes"
			}
			if u.LastSeenMillis >= 0 {
				seen = strconv.FormatInt(u.LastSeenMillis, 10) + "ms"
			}
			if len(u.MACs) > 0 {
				macs = strings.Join(u.MACs, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", u.Address, reach, rtt, seen,
				u.RxFrames, bytesHuman(u.RxBytes), u.TxFrames, bytesHuman(u.TxBytes), macs)
		}
		tw.Flush()
	}

	if len(st.Drops) > 0 {
		var ds []string
		for k, v := range st.Drops {
			ds = append(ds, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(ds)
		fmt.Fprintf(w, "\nDropped frames: %s\n", strings.Join(ds, " "))
	}
	return nil
}

func bytesHuman(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func newLANCaptureCmd(g *globals) *cobra.Command {
	var sf specFlags
	var out string
	var instances []string
	var duration time.Duration
	var count, snaplen int
	cmd := &cobra.Command{
		Use:   "capture [FILE|CLUSTER] -w OUT.pcap",
		Short: "Capture the LAN's frames into a pcap file (tcpdump, tshark, Wireshark)",
		Long: `capture records every frame entering the LAN, as the switch sees it, into a
standard pcap file, until Ctrl-C, --duration or --count. With --instance,
only frames from or to those guests (broadcasts included). The file is
valid at every moment: stop whenever you like. -w - writes to stdout.`,
		Example: "  loco lan capture -w lan.pcap --duration 30s\n  loco lan capture demo --instance 1 -w - | tcpdump -nr -",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("say where to write the capture: -w FILE.pcap (or -w - for stdout)")
			}
			c, err := apiClient(cmd, &sf, args)
			if err != nil {
				return err
			}
			q := url.Values{}
			for _, in := range instances {
				q.Add("instance", in)
			}
			if duration > 0 {
				q.Set("duration", duration.String())
			}
			if count > 0 {
				q.Set("count", strconv.Itoa(count))
			}
			if snaplen > 0 {
				q.Set("snaplen", strconv.Itoa(snaplen))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			resp, err := c.Capture(ctx, q)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var dst io.Writer = cmd.OutOrStdout()
			if out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("creating the capture file: %w", err)
				}
				defer f.Close()
				dst = f
			}
			n, err := copyPcap(dst, resp.Body)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("capture ended after %d frames: %w", n, err)
			}
			dropped := resp.Trailer.Get(api.TrailerDropped)
			if dropped != "" && dropped != "0" {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the capture lost %s frames (it was read too slowly)\n", dropped)
			}
			if out != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d frames written to %s\n", n, out)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVarP(&out, "write", "w", "", "pcap file to write (- for stdout)")
	cmd.Flags().StringArrayVar(&instances, "instance", nil, "only frames from or to this guest, by index or name (repeatable)")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many frames")
	cmd.Flags().IntVar(&snaplen, "snaplen", 0, "keep at most this many bytes of each frame")
	return cmd
}

// copyPcap re-writes the API's pcap stream record by record, so an
// interrupted capture leaves a file without a torn last record.
func copyPcap(dst io.Writer, src io.Reader) (int, error) {
	r, err := pcapgo.NewReader(src)
	if err != nil {
		return 0, fmt.Errorf("reading the capture's pcap header: %w", err)
	}
	w := pcapgo.NewWriter(dst)
	if err := w.WriteFileHeader(r.Snaplen(), r.LinkType()); err != nil {
		return 0, fmt.Errorf("writing the pcap header: %w", err)
	}
	n := 0
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if err := w.WritePacket(ci, data); err != nil {
			return n, fmt.Errorf("writing frame %d: %w", n+1, err)
		}
		n++
	}
}
