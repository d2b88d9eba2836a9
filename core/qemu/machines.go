package qemu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// MachineTypes lists the machine types binary ("" means DefaultBinary)
// offers, from its own `-machine help`, so a spec can be checked against
// the QEMU that will run it rather than a list that ages.
func MachineTypes(ctx context.Context, binary string) ([]string, error) {
	if binary == "" {
		binary = DefaultBinary
	}
	out, err := exec.CommandContext(ctx, binary, "-machine", "help").Output()
	if err != nil {
		return nil, fmt.Errorf("listing the machine types of %s: %w", binary, err)
	}
	return parseMachineHelp(out), nil
}

// parseMachineHelp reads "Supported machines are:" and then one
// "NAME  description" line per machine type.
func parseMachineHelp(out []byte) []string {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' || strings.HasSuffix(line, ":") {
			continue
		}
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}
