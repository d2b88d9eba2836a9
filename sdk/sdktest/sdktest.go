// Package sdktest runs a plugin in-process for its author's tests: the same
// gRPC services loco calls, over an in-memory connection, and the same HCL
// decoding loco applies to the plugin's block.
package sdktest

import (
	"context"
	"net"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/locolan/loco/sdk"
)

// Start serves impl and returns a client to it; both end with the test.
func Start(t testing.TB, impl sdk.Plugin) *sdk.Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	if err := sdk.RegisterServices(s, impl); err != nil {
		t.Fatalf("registering the plugin: %v", err)
	}
	go s.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///sdktest",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("connecting to the plugin: %v", err)
	}
	t.Cleanup(func() { conn.Close(); s.Stop() })
	return sdk.NewClient(conn)
}

// Configure decodes src, the body of the plugin's block as a user would
// write it, against the plugin's schema (defaults applied, unknown
// attributes refused), and configures the plugin with it. HCL errors come
// back as diagnostics; the plugin's own objections as problems.
func Configure(t testing.TB, c *sdk.Client, src string, cluster sdk.Cluster) ([]sdk.Problem, hcl.Diagnostics) {
	t.Helper()
	ctx := context.Background()
	schema, err := c.ConfigSchema(ctx)
	if err != nil {
		t.Fatalf("asking for the schema: %v", err)
	}
	f, diags := hclsyntax.ParseConfig([]byte(src), "plugin.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	val, diags := hcldec.Decode(f.Body, schema.Spec(), nil)
	if diags.HasErrors() {
		return nil, diags
	}
	problems, err := c.Configure(ctx, val, schema.ImpliedType(), cluster)
	if err != nil {
		t.Fatalf("configuring: %v", err)
	}
	return problems, nil
}
