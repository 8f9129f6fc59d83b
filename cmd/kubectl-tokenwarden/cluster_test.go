package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// kubeconfig has two contexts on one (unreachable) server: newCluster
// reads it without contacting the server.
const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:1
users:
- name: jane
  user:
    token: kube-user-credentials
contexts:
- name: payments
  context: {cluster: dev, user: jane, namespace: payments}
- name: plain
  context: {cluster: dev, user: jane}
current-context: payments
`

func TestNewClusterResolvesTheNamespaceAsKubectl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		flags   kubeFlags
		want    string
		wantErr string
	}{
		{"the current context's namespace", kubeFlags{kubeconfig: path}, "payments", ""},
		{"-n wins", kubeFlags{kubeconfig: path, namespace: "billing"}, "billing", ""},
		{"a context without a namespace", kubeFlags{kubeconfig: path, context: "plain"}, "default", ""},
		{"an unknown context", kubeFlags{kubeconfig: path, context: "prod"}, "",
			`loading the kubeconfig: context "prod" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := newCluster(tc.flags, io.Discard)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cl.namespace != tc.want {
				t.Errorf("namespace = %q, want %q", cl.namespace, tc.want)
			}
			if cl.config.BearerToken != "kube-user-credentials" || cl.client == nil {
				t.Errorf("not connected as the kubeconfig's user")
			}
		})
	}
}
