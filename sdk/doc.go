// Package sdk is what a loco plugin author imports: Serve to run a plugin, one
// Go interface per plugin kind, schema builders for the plugin's HCL block, and
// Client, the host side of the same protocol. The generated protobuf types
// stay behind this package; authors work with plain Go types.
package sdk
