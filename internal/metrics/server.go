package metrics

import (
	"crypto/tls"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Serving says how the manager serves the metrics endpoint. main.go builds
// the manager's metrics server from it with ServerOptions, and so does the
// test that scrapes the real server, so the test exercises the wiring the
// operator runs with.
type Serving struct {
	// BindAddress is where the endpoint listens; "0" serves none.
	BindAddress string
	// Secure serves HTTPS and answers only requests whose bearer token the
	// API server authenticates (TokenReview) and authorizes for get on the
	// path (SubjectAccessReview), as kubebuilder scaffolds it: the series
	// name every namespace with tokens and when each token expires, which
	// is not for anyone who can reach the pod. The manager's ServiceAccount
	// needs create on tokenreviews and subjectaccessreviews
	// (config/rbac/metrics_auth_role.yaml), a scraper get on the
	// non-resource URL /metrics (config/rbac/metrics_reader_role.yaml).
	// Off, it serves plain HTTP to anyone: for the local mode and the test
	// harness, which listen on loopback only.
	Secure bool
	// CertPath is the directory with the serving certificate and key,
	// reloaded when they change. Empty, or without both files, the server
	// uses a self-signed certificate it makes at start: the traffic is
	// encrypted, but a scraper can verify the server only against a
	// certificate it was given (cert-manager's, in the install).
	CertPath string
	// CertName and KeyName are the file names in CertPath; empty means
	// tls.crt and tls.key.
	CertName, KeyName string
}

// ServerOptions returns the controller-runtime metrics server options for
// s.
func ServerOptions(s Serving) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: s.BindAddress}
	if !s.Secure {
		return opts
	}
	opts.SecureServing = true
	opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	opts.CertDir, opts.CertName, opts.KeyName = s.CertPath, s.CertName, s.KeyName
	opts.TLSOpts = []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS12
		// HTTP/1.1 only, as kubebuilder's scaffold does: a scrape needs
		// nothing more, and HTTP/2 brought the stream reset floods
		// (CVE-2023-44487, CVE-2023-39325) to every server that spoke it.
		c.NextProtos = []string{"http/1.1"}
	}}
	return opts
}
