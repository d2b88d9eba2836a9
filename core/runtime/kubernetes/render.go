package kubernetes

import (
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// Render writes the objects as a YAML stream, in apply order: the same
// bodies Apply sends (Object.Body), converted to YAML, so what a user
// reviews or hands to GitOps is what loco would apply.
func Render(w io.Writer, o *Objects) error {
	for _, obj := range o.List() {
		body, err := obj.Body()
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(body)
		if err != nil {
			return fmt.Errorf("rendering %s %s as YAML: %w", obj.Kind, obj.Name, err)
		}
		if _, err := fmt.Fprintf(w, "---\n%s", y); err != nil {
			return err
		}
	}
	return nil
}
