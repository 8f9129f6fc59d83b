// Package manifests checks the kustomize bases under config/: that
// config/default renders one install manifest with what a production
// install needs, and that a real API server accepts it, the samples and
// the GitOps sample, with a server-side dry run (nothing has to run, so a
// bare kube-apiserver without nodes is enough).
package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

// expectedAbsentGroups are the API groups whose CRDs the test control plane
// lacks on purpose, with what would serve them. A rendered kind of any
// other group that the API server does not serve is a mistake: a typo in an
// apiVersion, or a CRD the install forgot.
var expectedAbsentGroups = map[string]string{
	"cert-manager.io":       "cert-manager",
	"monitoring.coreos.com": "the Prometheus Operator",
}

// requiredAlerts are the alerts config/prometheus must define; runbooks and
// dashboards refer to them by name.
var requiredAlerts = []string{
	"TokenwardenTokenExpiringSoon",
	"TokenwardenTokensInvalidated",
	"TokenwardenVerificationErrors",
	"TokenwardenOperatorDown",
}

const (
	injectCAAnnotation = "cert-manager.io/inject-ca-from"
	metricsPort        = "metrics"
	// restrictedWarn makes the API server warn about any pod template that
	// would not run under the restricted Pod Security Standard: enforcement
	// applies to Pods only, and a dry run creates none.
	restrictedWarn = "pod-security.kubernetes.io/warn=restricted"
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

// TestInstallManifest checks what config/default renders, without a
// cluster: the parts that must fit together for the install to work, which
// the API server would accept even when they do not.
func TestInstallManifest(t *testing.T) {
	docs := kustomizeBuild(t, "config/default")
	deploy := convert[appsv1.Deployment](t, only(t, docs, "Deployment"))
	manager := findContainer(deploy, "manager")
	if manager == nil {
		t.Fatalf("Deployment %s has no container named manager", deploy.Name)
	}

	t.Run("Deployment", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(deploy.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)),
			"two replicas: the leader runs the controllers, both serve admission and verification")
		g.Expect(manager.Args).To(ContainElement("--leader-elect"), "two replicas must not both run the controllers")
		g.Expect(manager.LivenessProbe).NotTo(BeNil(), "liveness probe")
		g.Expect(manager.ReadinessProbe).NotTo(BeNil(), "readiness probe")
		g.Expect(manager.Resources.Requests).To(HaveKey(corev1.ResourceCPU))
		g.Expect(manager.Resources.Requests).To(HaveKey(corev1.ResourceMemory))
		g.Expect(manager.Resources.Limits).To(HaveKey(corev1.ResourceMemory))
	})

	t.Run("PodDisruptionBudget", func(t *testing.T) {
		g := NewWithT(t)
		pdb := convert[policyv1.PodDisruptionBudget](t, only(t, docs, "PodDisruptionBudget"))
		g.Expect(pdb.Namespace).To(Equal(deploy.Namespace))
		g.Expect(pdb.Spec.MinAvailable).NotTo(BeNil(), "minAvailable")
		g.Expect(pdb.Spec.MinAvailable.String()).To(Equal("1"))
		g.Expect(pdb.Spec.Selector).To(Equal(deploy.Spec.Selector), "the PodDisruptionBudget must select the Deployment's pods")
	})

	// Bindings whose role or ServiceAccount the install does not render are
	// accepted by the API server and grant nothing: the operator would then
	// fail at run time on its first read.
	t.Run("RBAC references resolve", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(find(docs, "ServiceAccount", deploy.Namespace, deploy.Spec.Template.Spec.ServiceAccountName)).NotTo(BeNil(),
			"the Deployment runs as ServiceAccount %s, which the install does not render", deploy.Spec.Template.Spec.ServiceAccountName)
		bindings := append(ofKind(docs, "ClusterRoleBinding"), ofKind(docs, "RoleBinding")...)
		g.Expect(bindings).NotTo(BeEmpty())
		for _, obj := range bindings {
			binding := convert[rbacv1.RoleBinding](t, obj) // A ClusterRoleBinding has the same fields.
			roleNamespace := ""
			if binding.RoleRef.Kind == "Role" {
				roleNamespace = binding.Namespace
			}
			g.Expect(find(docs, binding.RoleRef.Kind, roleNamespace, binding.RoleRef.Name)).NotTo(BeNil(),
				"%s %s binds %s %s, which the install does not render", obj.GetKind(), name(obj), binding.RoleRef.Kind, binding.RoleRef.Name)
			for _, subject := range binding.Subjects {
				if subject.Kind == rbacv1.ServiceAccountKind {
					g.Expect(find(docs, "ServiceAccount", subject.Namespace, subject.Name)).NotTo(BeNil(),
						"%s %s binds ServiceAccount %s/%s, which the install does not render", obj.GetKind(), name(obj), subject.Namespace, subject.Name)
				}
			}
		}
	})

	t.Run("webhooks get cert-manager's CA", func(t *testing.T) {
		var services []admissionregistrationv1.ServiceReference
		check := func(kind, name string, annotations map[string]string) {
			ref := annotations[injectCAAnnotation]
			if ref == "" {
				t.Errorf("%s %s lacks the %s annotation", kind, name, injectCAAnnotation)
				return
			}
			namespace, certName, _ := strings.Cut(ref, "/")
			cert := find(docs, "Certificate", namespace, certName)
			if cert == nil {
				t.Errorf("%s %s: %s=%s names no rendered Certificate", kind, name, injectCAAnnotation, ref)
				return
			}
			dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
			for _, svc := range services {
				if want := svc.Name + "." + svc.Namespace + ".svc"; !slices.Contains(dnsNames, want) {
					t.Errorf("%s %s: Certificate %s does not cover %s (dnsNames %v)", kind, name, ref, want, dnsNames)
				}
			}
		}
		mutating := ofKind(docs, "MutatingWebhookConfiguration")
		validating := ofKind(docs, "ValidatingWebhookConfiguration")
		if len(mutating) == 0 || len(validating) == 0 {
			t.Fatalf("want mutating and validating webhook configurations, got %d and %d", len(mutating), len(validating))
		}
		for _, obj := range mutating {
			cfg := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, obj)
			services = services[:0]
			for _, w := range cfg.Webhooks {
				if svc := webhookService(t, docs, w.Name, w.ClientConfig); !slices.Contains(services, svc) {
					services = append(services, svc)
				}
			}
			check(obj.GetKind(), obj.GetName(), obj.GetAnnotations())
		}
		for _, obj := range validating {
			cfg := convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, obj)
			services = services[:0]
			for _, w := range cfg.Webhooks {
				if svc := webhookService(t, docs, w.Name, w.ClientConfig); !slices.Contains(services, svc) {
					services = append(services, svc)
				}
			}
			check(obj.GetKind(), obj.GetName(), obj.GetAnnotations())
		}
	})

	// Status writes are admitted only from the operator's ServiceAccount, by
	// its username: the policy must name the ServiceAccount the Deployment
	// runs as, in the namespace it runs in, whatever namespace and prefix
	// the install renders, or the operator is refused its own status writes
	// (and someone else may be admitted).
	t.Run("status writes only from the operator", func(t *testing.T) {
		g := NewWithT(t)
		policy := convert[admissionregistrationv1.ValidatingAdmissionPolicy](t, only(t, docs, "ValidatingAdmissionPolicy"))
		binding := convert[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, only(t, docs, "ValidatingAdmissionPolicyBinding"))
		g.Expect(binding.Spec.PolicyName).To(Equal(policy.Name), "the binding must bind the rendered policy")
		g.Expect(binding.Spec.ValidationActions).To(Equal([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}))
		g.Expect(binding.Spec.MatchResources).To(BeNil(), "the binding must not narrow what the policy matches")
		g.Expect(policy.Spec.FailurePolicy).To(HaveValue(Equal(admissionregistrationv1.Fail)))

		g.Expect(policy.Spec.MatchConstraints).NotTo(BeNil())
		covered := map[string]bool{}
		for _, rule := range policy.Spec.MatchConstraints.ResourceRules {
			if slices.Contains(rule.APIGroups, "auth.tokenwarden.io") && slices.Contains(rule.APIVersions, "*") &&
				slices.Contains(rule.Operations, admissionregistrationv1.Update) {
				for _, resource := range rule.Resources {
					covered[resource] = true
				}
			}
		}
		g.Expect(covered).To(HaveKey("apitokens/status"), "every version's UPDATE of apitokens/status")
		g.Expect(covered).To(HaveKey("teams/status"), "every version's UPDATE of teams/status")

		idx := slices.IndexFunc(policy.Spec.Variables, func(v admissionregistrationv1.Variable) bool { return v.Name == "operator" })
		g.Expect(idx).NotTo(Equal(-1), "the policy names the operator in its variable operator")
		operator, err := celStringConcat(policy.Spec.Variables[idx].Expression)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(operator).To(Equal(fmt.Sprintf("system:serviceaccount:%s:%s", deploy.Namespace, deploy.Spec.Template.Spec.ServiceAccountName)),
			"the policy must admit the ServiceAccount the Deployment runs as")
		for _, v := range policy.Spec.Validations {
			g.Expect(v.Expression).To(ContainSubstring("variables.operator"))
			g.Expect(v.Message).NotTo(BeEmpty(), "a refusal must say who may write status and why")
		}
	})

	// The ServiceMonitor, the metrics Service, the Deployment's port and
	// the alerts' job label must all agree, or Prometheus scrapes nothing
	// and the alerts never fire.
	t.Run("metrics are scraped", func(t *testing.T) {
		g := NewWithT(t)
		monitor, svc := metricsTarget(t, docs)
		g.Expect(monitor.Spec.Endpoints).To(ContainElement(HaveField("Port", metricsPort)))
		g.Expect(labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(deploy.Spec.Template.Labels))).To(BeTrue(),
			"Service %s must select the manager's pods", svc.Name)
		idx := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == metricsPort })
		g.Expect(idx).NotTo(Equal(-1), "Service %s has no port named %s", svc.Name, metricsPort)
		port := svc.Spec.Ports[idx]
		g.Expect(port.Port).To(BeEquivalentTo(8444))
		target := slices.IndexFunc(manager.Ports, func(p corev1.ContainerPort) bool {
			return p.Name == port.TargetPort.String() || fmt.Sprint(p.ContainerPort) == port.TargetPort.String()
		})
		g.Expect(target).NotTo(Equal(-1), "Service %s targets %s, which is no port of the manager container", svc.Name, port.TargetPort.String())
		g.Expect(manager.Args).To(ContainElement(fmt.Sprintf("--metrics-bind-address=:%d", manager.Ports[target].ContainerPort)),
			"the manager must serve metrics on the port the Service targets")
	})

	t.Run("alerts", func(t *testing.T) {
		g := NewWithT(t)
		documented, err := os.ReadFile(filepath.Join(repoRoot, "docs", "metrics.md"))
		g.Expect(err).NotTo(HaveOccurred())
		rule := convert[prometheusRule](t, only(t, docs, "PrometheusRule"))
		monitor, svc := metricsTarget(t, docs)
		// The alerts select on the job label, which must not depend on the
		// namePrefix of an installation.
		g.Expect(monitor.Spec.JobLabel).NotTo(BeEmpty(), "the ServiceMonitor must set jobLabel")
		job := svc.Labels[monitor.Spec.JobLabel]
		g.Expect(job).NotTo(BeEmpty(), "Service %s lacks the label %s that names the job", svc.Name, monitor.Spec.JobLabel)
		var names []string
		for _, group := range rule.Spec.Groups {
			for _, r := range group.Rules {
				if r.Alert == "" {
					continue
				}
				names = append(names, r.Alert)
				g.Expect(r.Expr).NotTo(BeEmpty(), r.Alert)
				g.Expect(r.Labels).To(HaveKeyWithValue("severity", BeElementOf("critical", "warning", "info")), r.Alert)
				g.Expect(r.Annotations).To(HaveKeyWithValue("summary", Not(BeEmpty())), r.Alert)
				g.Expect(r.Annotations).To(HaveKeyWithValue("description", Not(BeEmpty())), r.Alert)
				for _, metric := range metricName.FindAllString(r.Expr, -1) {
					g.Expect(strings.Contains(string(documented), "`"+metric+"`")).To(BeTrue(),
						"%s uses %s, which docs/metrics.md does not list", r.Alert, metric)
				}
				for _, m := range jobMatcher.FindAllStringSubmatch(r.Expr, -1) {
					g.Expect(m[1]).To(Equal(job), "%s selects a job the ServiceMonitor does not produce", r.Alert)
				}
			}
		}
		g.Expect(names).To(ContainElements(requiredAlerts))
	})
}

var (
	metricName = regexp.MustCompile(`\btokenwarden_[a-z_]+`)
	jobMatcher = regexp.MustCompile(`\bjob\s*=~?\s*"([^"]*)"`)
	// celConcat is a CEL expression made only of single-quoted string
	// literals without escapes, joined by +: the shape the status policy's
	// operator variable keeps so that kustomize can replace its parts.
	celConcat  = regexp.MustCompile(`^\s*'[^'\\]*'(\s*\+\s*'[^'\\]*')*\s*$`)
	celLiteral = regexp.MustCompile(`'([^'\\]*)'`)
)

// celStringConcat evaluates a celConcat expression.
func celStringConcat(expr string) (string, error) {
	if !celConcat.MatchString(expr) {
		return "", fmt.Errorf("%q is not a concatenation of single-quoted string literals", expr)
	}
	var out strings.Builder
	for _, m := range celLiteral.FindAllStringSubmatch(expr, -1) {
		out.WriteString(m[1])
	}
	return out.String(), nil
}

// TestManifestsApply has a real kube-apiserver accept, with a server-side
// dry run, the install manifest (server-side apply, as `make deploy`), the
// samples (`kubectl apply -f config/samples/`, as the README says) and the
// GitOps sample (server-side apply, as Flux and Argo CD's server-side mode
// do). The API server runs schema and CEL validation and Pod Security
// admission on every object without creating it.
func TestManifestsApply(t *testing.T) {
	install := kustomizeBuild(t, "config/default")
	gitops := kustomizeBuild(t, "config/samples/gitops")
	samples := readSamples(t)

	env, cfg, _, err := controlplane.Start(controlplane.Options{})
	if env != nil {
		t.Cleanup(func() {
			if err := env.Stop(); err != nil {
				t.Logf("stopping the control plane: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	k := newKubectl(t, env)
	served := servedKinds(t, cfg)

	t.Run("install", func(t *testing.T) {
		k.createNamespaces(t, install)
		k.dryRun(t, onlyServed(t, served, install), "--server-side", "-f", "-")
	})
	t.Run("samples", func(t *testing.T) {
		k.createNamespaces(t, samples)
		// Every kind of the samples is served: nothing may be skipped, so the
		// directory goes to kubectl as a user would pass it.
		docs := onlyServed(t, served, samples)
		if len(docs) != len(samples) {
			t.Fatalf("the samples use kinds the API server does not serve")
		}
		k.dryRun(t, docs, "-f", filepath.Join(repoRoot, "config", "samples")+string(filepath.Separator))
	})
	t.Run("gitops sample", func(t *testing.T) {
		// The platform creates the namespace and the Team outside the GitOps
		// repository; the namespace has to exist for real.
		k.createNamespaces(t, samples)
		k.dryRun(t, onlyServed(t, served, gitops), "--server-side", "-f", "-")
	})
}

// kubectl runs the control plane's kubectl as an admin.
type kubectl struct {
	path, kubeconfig string
}

func newKubectl(t *testing.T, env *envtest.Environment) *kubectl {
	t.Helper()
	user, err := env.AddUser(envtest.User{Name: "manifests-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("adding a user: %v", err)
	}
	config, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("writing a kubeconfig: %v", err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, config, 0o600); err != nil {
		t.Fatal(err)
	}
	return &kubectl{path: filepath.Join(env.BinaryAssetsDirectory, "kubectl"), kubeconfig: kubeconfig}
}

// run runs kubectl with stdin and returns its standard output and error.
func (k *kubectl) run(t *testing.T, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.path, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// createNamespaces creates the Namespaces among docs for real, as kubectl
// apply would, since a dry-run object cannot land in a namespace that a
// dry run did not create. They also get restrictedWarn.
func (k *kubectl) createNamespaces(t *testing.T, docs []*unstructured.Unstructured) {
	t.Helper()
	var names []string
	var stream bytes.Buffer
	for _, obj := range ofKind(docs, "Namespace") {
		names = append(names, obj.GetName())
		stream.Write(marshal(t, obj))
	}
	if len(names) == 0 {
		return
	}
	if _, stderr, err := k.run(t, stream.Bytes(), "apply", "-f", "-"); err != nil {
		t.Fatalf("creating namespaces %v: %v\n%s", names, err, stderr)
	}
	args := append([]string{"label", "--overwrite", "namespace"}, names...)
	if _, stderr, err := k.run(t, nil, append(args, restrictedWarn)...); err != nil {
		t.Fatalf("labelling namespaces %v: %v\n%s", names, err, stderr)
	}
}

// dryRun applies docs with a server-side dry run, reading them from stdin
// or from the files args name, and fails on any error or warning, and
// unless kubectl reports every document.
func (k *kubectl) dryRun(t *testing.T, docs []*unstructured.Unstructured, args ...string) {
	t.Helper()
	var stream bytes.Buffer
	for _, obj := range docs {
		stream.Write(marshal(t, obj))
	}
	stdout, stderr, err := k.run(t, stream.Bytes(), append([]string{"apply", "--dry-run=server", "--field-manager=tokenwarden-manifests-test"}, args...)...)
	t.Logf("kubectl apply --dry-run=server %s:\n%s%s", strings.Join(args, " "), stdout, stderr)
	if err != nil {
		t.Fatalf("the API server refused the manifests: %v\n%s", err, stderr)
	}
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "Warning:") {
			t.Errorf("kubectl warned: %s", line)
		}
	}
	applied := strings.Count(stdout, "(server dry run)")
	if applied != len(docs) {
		t.Errorf("kubectl applied %d objects, want %d", applied, len(docs))
	}
}

// servedKinds asks discovery which kinds the API server serves.
func servedKinds(t *testing.T, cfg *rest.Config) map[schema.GroupVersionKind]bool {
	t.Helper()
	client, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, lists, err := client.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	served := map[schema.GroupVersionKind]bool{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.APIResources {
			if !strings.Contains(r.Name, "/") {
				served[gv.WithKind(r.Kind)] = true
			}
		}
	}
	return served
}

// onlyServed returns the documents whose kind the API server serves,
// logging the others; a kind left out must belong to expectedAbsentGroups.
func onlyServed(t *testing.T, served map[schema.GroupVersionKind]bool, docs []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, obj := range docs {
		gvk := obj.GroupVersionKind()
		if served[gvk] {
			out = append(out, obj)
			continue
		}
		if provider, ok := expectedAbsentGroups[gvk.Group]; ok {
			t.Logf("skipping %s %s: %s is not installed in the test control plane", gvk.Kind, name(obj), provider)
			continue
		}
		t.Errorf("%s %s: the API server does not serve %s, and group %q is not expected to be absent",
			gvk.Kind, name(obj), gvk, gvk.Group)
	}
	return out
}

// kustomizeBuild renders dir, relative to the repository root.
func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	// make test names its pinned kustomize; by hand, bin/kustomize is the
	// link `make kustomize` leaves.
	kustomize := os.Getenv("KUSTOMIZE")
	if kustomize == "" {
		kustomize = filepath.Join(repoRoot, "bin", "kustomize")
	}
	if _, err := os.Stat(kustomize); err != nil {
		t.Fatalf("%s is missing: run `make kustomize` to install it (%v)", kustomize, err)
	}
	cmd := exec.CommandContext(t.Context(), kustomize, "build", dir)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	docs, err := decode(out)
	if err != nil {
		t.Fatalf("decoding kustomize build %s: %v", dir, err)
	}
	if len(docs) == 0 {
		t.Fatalf("kustomize build %s rendered nothing", dir)
	}
	return docs
}

// readSamples decodes config/samples/*.yaml, the files `kubectl apply -f
// config/samples/` reads (it does not descend into directories).
func readSamples(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in config/samples: %v", err)
	}
	var docs []*unstructured.Unstructured
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decode(data)
		if err != nil {
			t.Fatalf("decoding %s: %v", file, err)
		}
		docs = append(docs, objs...)
	}
	return docs
}

// decode reads every non-empty document of a YAML stream.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var docs []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		if err := decoder.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, err
		}
		if len(obj) > 0 {
			docs = append(docs, &unstructured.Unstructured{Object: obj})
		}
	}
}

func marshal(t *testing.T, obj *unstructured.Unstructured) []byte {
	t.Helper()
	data, err := yaml.Marshal(obj.Object)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte("---\n"), data...)
}

func ofKind(docs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range docs {
		if obj.GetKind() == kind {
			out = append(out, obj)
		}
	}
	return out
}

// only returns the one document of kind, failing unless there is exactly
// one.
func only(t *testing.T, docs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	found := ofKind(docs, kind)
	if len(found) != 1 {
		t.Fatalf("want one %s in the install manifest, got %d", kind, len(found))
	}
	return found[0]
}

func find(docs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, obj := range ofKind(docs, kind) {
		if obj.GetNamespace() == namespace && obj.GetName() == name {
			return obj
		}
	}
	return nil
}

func name(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

// convert decodes obj into a typed object.
func convert[T any](t *testing.T, obj *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, out); err != nil {
		t.Fatalf("decoding %s %s: %v", obj.GetKind(), name(obj), err)
	}
	return out
}

func findContainer(deploy *appsv1.Deployment, name string) *corev1.Container {
	for i := range deploy.Spec.Template.Spec.Containers {
		if deploy.Spec.Template.Spec.Containers[i].Name == name {
			return &deploy.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

// metricsTarget returns the one ServiceMonitor and the one Service it
// selects, failing unless there is exactly one of each.
func metricsTarget(t *testing.T, docs []*unstructured.Unstructured) (*serviceMonitor, *corev1.Service) {
	t.Helper()
	monitor := convert[serviceMonitor](t, only(t, docs, "ServiceMonitor"))
	selector, err := metav1.LabelSelectorAsSelector(&monitor.Spec.Selector)
	if err != nil {
		t.Fatalf("ServiceMonitor %s: %v", monitor.Name, err)
	}
	var matched []*corev1.Service
	for _, obj := range ofKind(docs, "Service") {
		if obj.GetNamespace() == monitor.Namespace && selector.Matches(labels.Set(obj.GetLabels())) {
			matched = append(matched, convert[corev1.Service](t, obj))
		}
	}
	if len(matched) != 1 {
		t.Fatalf("ServiceMonitor %s selects %d Services, want exactly the metrics Service", monitor.Name, len(matched))
	}
	return monitor, matched[0]
}

// webhookService returns the Service a webhook calls, failing unless the
// install renders it.
func webhookService(t *testing.T, docs []*unstructured.Unstructured, webhook string, cfg admissionregistrationv1.WebhookClientConfig) admissionregistrationv1.ServiceReference {
	t.Helper()
	if cfg.Service == nil {
		t.Fatalf("webhook %s calls a URL, not the operator's Service", webhook)
	}
	if find(docs, "Service", cfg.Service.Namespace, cfg.Service.Name) == nil {
		t.Errorf("webhook %s calls Service %s/%s, which the install does not render", webhook, cfg.Service.Namespace, cfg.Service.Name)
	}
	return *cfg.Service
}

// serviceMonitor is the part of a monitoring.coreos.com/v1 ServiceMonitor
// the test reads.
type serviceMonitor struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel  string               `json:"jobLabel"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port string `json:"port"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is the part of a monitoring.coreos.com/v1 PrometheusRule
// the test reads.
type prometheusRule struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}
