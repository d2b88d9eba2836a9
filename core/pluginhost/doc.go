// Package pluginhost finds plugin binaries, runs them through go-plugin
// (gRPC, AutoMTLS), decodes each plugin's block of the cluster spec against
// the schema the plugin declares, and keeps the plugins alive: it pings them,
// restarts a crashed one with backoff and replays its configuration, and
// makes sure none outlives the host.
package pluginhost
