package spec

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// FormatDiagnostic renders one diagnostic as "file:line:col: error: summary;
// detail", the form editors and terminals make clickable.
func FormatDiagnostic(d *hcl.Diagnostic) string {
	sev := "error"
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	msg := d.Summary
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	if d.Subject == nil {
		return fmt.Sprintf("%s: %s", sev, msg)
	}
	s := d.Subject
	return fmt.Sprintf("%s:%d:%d: %s: %s", s.Filename, s.Start.Line, s.Start.Column, sev, msg)
}

// WriteDiagnostics prints each diagnostic with the source line it points at
// and a caret under the column.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	for _, d := range diags {
		fmt.Fprintln(w, FormatDiagnostic(d))
		if d.Subject == nil {
			continue
		}
		f, ok := files[d.Subject.Filename]
		if !ok {
			continue
		}
		lines := bytes.Split(f.Bytes, []byte("\n"))
		n := d.Subject.Start.Line
		if n < 1 || n > len(lines) {
			continue
		}
		line := strings.ReplaceAll(string(lines[n-1]), "\t", " ")
		fmt.Fprintf(w, "  %4d | %s\n", n, line)
		col := d.Subject.Start.Column
		if col < 1 {
			col = 1
		}
		fmt.Fprintf(w, "       | %s^\n", strings.Repeat(" ", col-1))
	}
}
