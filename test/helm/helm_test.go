// Package helm checks the Helm chart that hack/helmchart derives from the
// kustomize build: helm lints it, its default values render the build
// object for object, each value changes what it says and nothing else, and
// it refuses what it cannot honour.
//
// The test renders config/default itself, the build `make build-installer`
// writes to dist/install.yaml, and generates the chart from it exactly as
// `make helm-chart` does, so it never checks a stale dist/ and needs no
// `kustomize edit set image`.
package helm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/diff"

	"github.com/tokenwarden/tokenwarden/hack/helmchart/chart"
)

// repoRoot is the checkout under test; go test runs in the package's
// directory.
var repoRoot = func() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}()

// fixture is the build, the chart generated from it and the tools.
type fixture struct {
	helm      string
	chartDir  string
	namespace string
	build     []*unstructured.Unstructured
}

func setup(t *testing.T) fixture {
	t.Helper()
	install := run(t, tool(t, "KUSTOMIZE", "kustomize"), "build", "config/default")
	build, err := chart.Decode(install)
	if err != nil {
		t.Fatalf("decoding kustomize build config/default: %v", err)
	}
	files, err := chart.Generate(install, chart.Options{Version: "v1.2.3-4-gabcdef0"})
	if err != nil {
		t.Fatalf("generating the chart: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "chart")
	if err := chart.Write(dir, files); err != nil {
		t.Fatal(err)
	}
	f := fixture{helm: tool(t, "HELM", "helm"), chartDir: dir, build: build}
	f.namespace = manager(t, build).GetNamespace()
	return f
}

func TestChart(t *testing.T) {
	f := setup(t)

	t.Run("lint", func(t *testing.T) {
		for _, values := range [][]string{nil, {"--set", "prometheus.enabled=false,certManager.enabled=false,networkPolicy.enabled=false,crds.keep=true"}} {
			args := append([]string{"lint", "--strict", "--namespace", f.namespace, f.chartDir}, values...)
			t.Logf("helm %s:\n%s", strings.Join(args, " "), run(t, f.helm, args...))
		}
	})

	mgr := manager(t, f.build)
	image := chart.ParseImage(managerContainer(t, mgr)["image"].(string))
	cases := []struct {
		name string
		set  []string
		// want edits a copy of the build into what the chart must render.
		want func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured
	}{{
		name: "defaults render the build",
		want: func(_ *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured { return objs },
	}, {
		name: "image tag, without Prometheus",
		set:  []string{"image.tag=v9.9.9", "prometheus.enabled=false"},
		want: func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
			managerContainer(t, manager(t, objs))["image"] = image.Repository + ":v9.9.9"
			return drop(objs, func(u *unstructured.Unstructured) bool { return group(u) == "monitoring.coreos.com" })
		},
	}, {
		name: "image by digest, replicas and resources",
		set: []string{"image.repository=registry.example:5000/tw", "image.tag=", "image.digest=sha256:0123",
			"replicaCount=3", "resources.requests.cpu=1"},
		want: func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
			deploy := manager(t, objs)
			must(t, unstructured.SetNestedField(deploy.Object, int64(3), "spec", "replicas"))
			c := managerContainer(t, deploy)
			c["image"] = "registry.example:5000/tw@sha256:0123"
			must(t, unstructured.SetNestedField(c, int64(1), "resources", "requests", "cpu"))
			return objs
		},
	}, {
		name: "without cert-manager and NetworkPolicies, CRDs kept",
		set:  []string{"certManager.enabled=false", "networkPolicy.enabled=false", "crds.keep=true"},
		want: func(_ *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
			for _, u := range objs {
				if u.GetKind() == "CustomResourceDefinition" {
					annotations := u.GetAnnotations()
					if annotations == nil {
						annotations = map[string]string{}
					}
					annotations["helm.sh/resource-policy"] = "keep"
					u.SetAnnotations(annotations)
				}
			}
			return drop(objs, func(u *unstructured.Unstructured) bool {
				return group(u) == "cert-manager.io" || u.GetKind() == "NetworkPolicy"
			})
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "tokenwarden", f.chartDir, "--namespace", f.namespace}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			got, err := chart.Decode(run(t, f.helm, args...))
			if err != nil {
				t.Fatalf("decoding helm template: %v", err)
			}
			compare(t, tc.want(t, deepCopy(f.build)), got)
		})
	}

	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"another namespace", []string{"--namespace", "elsewhere"}, "pass --namespace " + f.namespace},
		{"a tag --set made a number", []string{"--namespace", f.namespace, "--set", "image.tag=2"}, "/image/tag"},
		{"a misspelt value", []string{"--namespace", f.namespace, "--set", "prometheus.enable=false"}, "enable"},
	}
	for _, tc := range refusals {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			args := append([]string{"template", "tokenwarden", f.chartDir}, tc.args...)
			cmd := exec.CommandContext(t.Context(), f.helm, args...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("helm %s succeeded; want a refusal mentioning %q", strings.Join(args, " "), tc.want)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("helm %s refused without mentioning %q:\n%s", strings.Join(args, " "), tc.want, out)
			}
		})
	}
}

// compare reports objects missing from or extra in got, keyed by kind,
// namespace and name (helm orders them by kind, kustomize does not), and
// the diff of the first object that differs.
func compare(t *testing.T, want, got []*unstructured.Unstructured) {
	t.Helper()
	wantBy, gotBy := byKey(t, want), byKey(t, got)
	var missing, extra, differ []string
	for key := range wantBy {
		if _, ok := gotBy[key]; !ok {
			missing = append(missing, key)
		}
	}
	for key, g := range gotBy {
		w, ok := wantBy[key]
		if !ok {
			extra = append(extra, key)
		} else if !reflect.DeepEqual(w.Object, g.Object) {
			differ = append(differ, key)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(differ)
	if len(missing) > 0 {
		t.Errorf("helm template lacks %d object(s): %s", len(missing), strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		t.Errorf("helm template has %d unexpected object(s): %s", len(extra), strings.Join(extra, ", "))
	}
	if len(differ) > 0 {
		t.Errorf("helm template renders %d object(s) differently: %s\nfirst, %s (- want, + helm template):\n%s",
			len(differ), strings.Join(differ, ", "), differ[0], diff.Diff(wantBy[differ[0]].Object, gotBy[differ[0]].Object))
	}
}

func byKey(t *testing.T, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := make(map[string]*unstructured.Unstructured, len(objs))
	for _, u := range objs {
		key := fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
		if _, dup := m[key]; dup {
			t.Fatalf("%s appears twice", key)
		}
		m[key] = u
	}
	return m
}

// manager is the Deployment that runs the manager container.
func manager(t *testing.T, objs []*unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == "Deployment" && containerIn(u) != nil {
			return u
		}
	}
	t.Fatalf("the build has no Deployment with a container named %s", chart.ManagerContainer)
	return nil
}

// managerContainer is the manager container of deploy, as a map that edits
// deploy in place.
func managerContainer(t *testing.T, deploy *unstructured.Unstructured) map[string]any {
	t.Helper()
	c := containerIn(deploy)
	if c == nil {
		t.Fatalf("%s has no container named %s", deploy.GetName(), chart.ManagerContainer)
	}
	return c
}

func containerIn(deploy *unstructured.Unstructured) map[string]any {
	spec, ok := deploy.Object["spec"].(map[string]any)
	if !ok {
		return nil
	}
	template, _ := spec["template"].(map[string]any)
	podSpec, _ := template["spec"].(map[string]any)
	containers, _ := podSpec["containers"].([]any)
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == chart.ManagerContainer {
			return m
		}
	}
	return nil
}

func drop(objs []*unstructured.Unstructured, match func(*unstructured.Unstructured) bool) []*unstructured.Unstructured {
	return slices.DeleteFunc(objs, match)
}

func deepCopy(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, u := range objs {
		out[i] = u.DeepCopy()
	}
	return out
}

func group(u *unstructured.Unstructured) string {
	return u.GroupVersionKind().Group
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tool is the binary make passes in env, or the link its install target
// leaves in bin/ when the test runs by hand.
func tool(t *testing.T, env, name string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		path = filepath.Join(repoRoot, "bin", name)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing: run `make %s` to install it (%v)", path, name, err)
	}
	return path
}

// run runs a tool in the repository root and returns its standard output.
func run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}
