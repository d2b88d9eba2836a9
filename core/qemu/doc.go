// Package qemu builds QEMU command lines, per-guest disk overlays and MAC
// addresses, probes the accelerator, and saves and lists snapshots. The
// QMP client is sdk/qmp, shared with the plugins.
//
// The package deliberately knows nothing about loco's spec types: it takes
// its own plain structs so the planner can call it as pure functions and the
// runtime can reuse it without import cycles.
package qemu
