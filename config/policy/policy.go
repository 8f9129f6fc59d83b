// Package policy embeds the ValidatingAdmissionPolicy that admits status
// writes only from the operator, so the local mode and the test control
// plane install exactly what kustomize ships.
package policy

import _ "embed"

// StatusWriters is status_writers.yaml: the policy and its binding.
//
//go:embed status_writers.yaml
var StatusWriters []byte
