// Package spec reads a cluster spec (HCL) into Go types. It owns the core's
// schema and variables; each plugin's block is kept as an hcl.Body until the
// plugin host has learned that plugin's schema. Every problem is an
// hcl.Diagnostic with a position in the user's file.
package spec
