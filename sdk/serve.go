package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// logger is the plugin's hclog logger. It writes JSON to stderr, which the
// host relays into its own log under the plugin's name; stdout belongs to the
// go-plugin handshake and must never be written to.
var logger = hclog.New(&hclog.LoggerOptions{
	Name:       "plugin",
	Output:     os.Stderr,
	JSONFormat: true,
	Level:      hclog.Debug,
})

// Logger is where a plugin logs.
func Logger() hclog.Logger { return logger }

// Serve runs the plugin until the host is done with it. Run from main:
//
//	func main() { sdk.Serve(&myPlugin{}) }
//
// Started by loco, it speaks go-plugin over stdio. Started as
// `loco-plugin-x serve --listen 127.0.0.1:7000`, it serves the same gRPC
// services on that address without go-plugin, for sidecars that the core
// dials.
func Serve(impl Plugin) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serveStandalone(impl, os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
			os.Exit(1)
		}
		return
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a loco plugin: loco starts it (see `loco plugins`).\n"+
			"To serve it on its own, run: %s serve --listen 127.0.0.1:PORT\n", os.Args[0], os.Args[0])
		os.Exit(1)
	}
	go exitWithParent(os.Getppid())
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{1: {PluginName: &grpcPlugin{impl: impl}}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})
}

// exitWithParent ends the plugin when the host is gone. The host also sets
// Pdeathsig, but that follows the host's thread, not its process, and a
// SIGKILLed host runs no cleanup: this is the guarantee that no plugin
// outlives its host.
func exitWithParent(parent int) {
	for range time.Tick(250 * time.Millisecond) {
		if os.Getppid() != parent {
			logger.Info("host process is gone; exiting")
			os.Exit(0)
		}
	}
}

func serveStandalone(impl Plugin, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve gRPC on")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback listen address (the stream is not encrypted)")
	tlsDir := fs.String("tls-dir", "", "serve mutual TLS with DIR/tls.crt, DIR/tls.key and DIR/ca.crt (a kubernetes.io/tls Secret with ca.crt): only clients with a certificate from that CA are served; any listen address is allowed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && !*allowRemote && *tlsDir == "" {
		return fmt.Errorf("--listen %q is not a loopback address; serve it with --tls-dir (mutual TLS), or add --allow-remote to serve it unencrypted", *listen)
	}
	var opts []grpc.ServerOption
	if *tlsDir != "" {
		creds, err := MutualTLS(*tlsDir, false)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(creds)))
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	s := grpc.NewServer(opts...)
	if err := RegisterServices(s, impl); err != nil {
		return err
	}
	// The address goes to stderr as a log line, and to stdout as the one line
	// a supervisor reads to learn the port when it asked for port 0.
	fmt.Fprintln(os.Stdout, lis.Addr().String())
	logger.Info("serving without go-plugin", "addr", lis.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); s.GracefulStop() }()
	if err := s.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}

// MutualTLS reads DIR/tls.crt, DIR/tls.key and DIR/ca.crt (the layout of
// a kubernetes.io/tls Secret with ca.crt) into a TLS 1.3 configuration
// that trusts only that CA: for a server (client false) it requires a
// client certificate from the CA; for a client it checks the server's.
func MutualTLS(dir string, client bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return nil, fmt.Errorf("loading the TLS key pair in %s: %w", dir, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("loading the CA of %s: %w", dir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", filepath.Join(dir, "ca.crt"))
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if client {
		cfg.RootCAs = pool
	} else {
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// grpcPlugin is the go-plugin glue: the server registers impl, the client
// side returns a *Client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Plugin
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	return RegisterServices(s, p.impl)
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(c), nil
}

// PluginSets is what a host passes to go-plugin's ClientConfig.VersionedPlugins.
func PluginSets() map[int]plugin.PluginSet {
	sets := map[int]plugin.PluginSet{}
	for _, v := range APIVersions {
		sets[v] = plugin.PluginSet{PluginName: &grpcPlugin{}}
	}
	return sets
}

// PluginName is the go-plugin name a host dispenses. A loco binary serves this
// one name; its kind is told by Info, so one dispense covers every kind.
const PluginName = "loco"
