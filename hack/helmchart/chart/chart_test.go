package chart

import (
	"strings"
	"testing"
	"text/template"

	. "github.com/onsi/gomega"
)

func TestParseImage(t *testing.T) {
	for ref, want := range map[string]Image{
		"tokenwarden":                             {Repository: "tokenwarden"},
		"tokenwarden:latest":                      {Repository: "tokenwarden", Tag: "latest"},
		"registry.example:5000/tw":                {Repository: "registry.example:5000/tw"},
		"registry.example:5000/team/tw:v1.2.3":    {Repository: "registry.example:5000/team/tw", Tag: "v1.2.3"},
		"ghcr.io/tw@sha256:abc":                   {Repository: "ghcr.io/tw", Digest: "sha256:abc"},
		"registry.example:5000/tw:v1@sha256:abc1": {Repository: "registry.example:5000/tw", Tag: "v1", Digest: "sha256:abc1"},
	} {
		t.Run(ref, func(t *testing.T) {
			NewWithT(t).Expect(ParseImage(ref)).To(Equal(want))
		})
	}
}

func TestChartVersion(t *testing.T) {
	for version, want := range map[string]string{
		"v1.2.3":                  "1.2.3",
		"1.2.3":                   "1.2.3",
		"v1.2.3-4-gabcdef0":       "1.2.3-4-gabcdef0",
		"v1.2.3-4-gabcdef0-dirty": "1.2.3-4-gabcdef0-dirty",
		"v1.2.3-rc.1+build.5":     "1.2.3-rc.1+build.5",
		"latest":                  "0.0.0-dev-latest",
		"0123abc":                 "0.0.0-dev-0123abc",
		"0123456":                 "0.0.0-dev-0123456",
		"v1.2":                    "0.0.0-dev-v1-2",
		"v1.02.3":                 "0.0.0-dev-v1-02-3",
		"feature/x_y":             "0.0.0-dev-feature-x-y",
	} {
		t.Run(version, func(t *testing.T) {
			g := NewWithT(t)
			got := ChartVersion(version)
			g.Expect(got).To(Equal(want))
			g.Expect(semver.MatchString(got)).To(BeTrue(), "%s is not SemVer 2", got)
		})
	}
}

// Helm renders templates with text/template, so what comes out of it
// unchanged there comes out of helm unchanged.
func TestEscapeTemplates(t *testing.T) {
	for _, text := range []string{
		"no actions",
		"summary: {{ $labels.namespace }}/{{ $labels.name }} expires in {{\n  $value | humanizeDuration }}.",
		"{{{ triple }}}",
		"{{- trimmed -}}",
		"closing only }} and {{",
		`{{ "{{" }}`,
	} {
		t.Run(text, func(t *testing.T) {
			g := NewWithT(t)
			tmpl, err := template.New("").Parse(EscapeTemplates(text))
			g.Expect(err).NotTo(HaveOccurred())
			var out strings.Builder
			g.Expect(tmpl.Execute(&out, nil)).To(Succeed())
			g.Expect(out.String()).To(Equal(text))
		})
	}
}

const manager = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: m
  namespace: ns
spec:
  replicas: 2
  template:
    spec:
      containers:
      - image: tw:v1
        name: manager
        resources:
          limits:
            memory: 1Gi
`

func TestGenerate(t *testing.T) {
	t.Run("templatizes the manager and guards the namespace", func(t *testing.T) {
		g := NewWithT(t)
		files, err := Generate([]byte(manager), Options{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(files).To(HaveKey("templates/deployment-m.yaml"))
		deploy := string(files["templates/deployment-m.yaml"])
		g.Expect(deploy).To(ContainSubstring("replicas: {{ .Values.replicaCount }}\n"))
		g.Expect(deploy).To(ContainSubstring(`image: {{ include "tokenwarden.image" . | quote }}` + "\n"))
		g.Expect(deploy).To(ContainSubstring("        resources:\n          {{- toYaml .Values.resources | nindent 10 }}\n"))
		g.Expect(string(files["templates/namespace-guard.yaml"])).To(ContainSubstring(`ne .Release.Namespace "ns"`))
		g.Expect(string(files["Chart.yaml"])).To(ContainSubstring(`version: "0.0.0-dev-v1"`))
		g.Expect(string(files["values.yaml"])).To(ContainSubstring("image:\n  repository: \"tw\"\n  tag: \"v1\"\n"))
	})

	for name, build := range map[string]string{
		"no manager":      strings.Replace(manager, "name: manager", "name: other", 1),
		"no replicas":     strings.Replace(manager, "  replicas: 2\n", "", 1),
		"no resources":    manager[:strings.Index(manager, "        resources:")],
		"two managers":    manager + "---\n" + strings.Replace(manager, "name: m\n", "name: m2\n", 1),
		"placeholder use": manager + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + phImage + "\n",
	} {
		t.Run("refuses a build with "+name, func(t *testing.T) {
			_, err := Generate([]byte(build), Options{})
			NewWithT(t).Expect(err).To(HaveOccurred())
		})
	}
}
