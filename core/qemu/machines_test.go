package qemu

import (
	"context"
	"slices"
	"testing"
)

// TestMachineTypes: the host's QEMU lists pc and q35 and the versioned
// types behind them; the header is not a type.
func TestMachineTypes(t *testing.T) {
	types, err := MachineTypes(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pc", "q35", "none"} {
		if !slices.Contains(types, want) {
			t.Errorf("no %q among %v", want, types)
		}
	}
	if slices.Contains(types, "Supported") || len(types) < 5 {
		t.Errorf("parsed %v", types)
	}
}
