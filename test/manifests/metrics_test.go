package manifests

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// securedEndpoint is the part of a ServiceMonitor endpoint that says how
// Prometheus authenticates itself and the server.
type securedEndpoint struct {
	Port            string `json:"port"`
	Scheme          string `json:"scheme"`
	BearerTokenFile string `json:"bearerTokenFile"`
	Authorization   *struct {
		Credentials *struct {
			Name string `json:"name"`
		} `json:"credentials"`
	} `json:"authorization"`
	TLSConfig *struct {
		ServerName         string `json:"serverName"`
		InsecureSkipVerify bool   `json:"insecureSkipVerify"`
		CA                 struct {
			Secret *struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"secret"`
		} `json:"ca"`
	} `json:"tlsConfig"`
}

// TestMetricsServedSecurely checks that the install serves metrics over
// HTTPS to authorized scrapers only, as the operator does by default, and
// that Prometheus is set up to scrape it so: with a bearer token, verifying
// cert-manager's certificate. Plain HTTP stays for the local mode and the
// test harness, which pass --metrics-secure=false on loopback.
func TestMetricsServedSecurely(t *testing.T) {
	docs := kustomizeBuild(t, "config/default")
	deploy := convert[appsv1.Deployment](t, only(t, docs, "Deployment"))
	manager := findContainer(deploy, "manager")
	if manager == nil {
		t.Fatalf("Deployment %s has no container named manager", deploy.Name)
	}
	monitor, svc := metricsTarget(t, docs)

	t.Run("the manager serves HTTPS with cert-manager's certificate", func(t *testing.T) {
		g := NewWithT(t)
		if v, ok := flagValue(manager.Args, "metrics-secure"); ok {
			secure, err := strconv.ParseBool(v)
			g.Expect(err).NotTo(HaveOccurred(), "--metrics-secure=%s", v)
			g.Expect(secure).To(BeTrue(), "the install must not serve metrics over plain HTTP to anyone who reaches the pod")
		}
		certPath, ok := flagValue(manager.Args, "metrics-cert-path")
		g.Expect(ok).To(BeTrue(), "without --metrics-cert-path the server's self-signed certificate cannot be verified")
		secret := mountedSecret(deploy, manager, certPath)
		g.Expect(secret).NotTo(BeEmpty(), "--metrics-cert-path=%s is no Secret mounted in the manager container", certPath)
		cert := certificateFor(docs, secret)
		g.Expect(cert).NotTo(BeNil(), "no rendered Certificate writes Secret %s", secret)
		dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		g.Expect(dnsNames).To(ContainElement(svc.Name+"."+svc.Namespace+".svc"), "Certificate %s must name the metrics Service", name(cert))
	})

	t.Run("Prometheus scrapes HTTPS with a token and verifies the server", func(t *testing.T) {
		g := NewWithT(t)
		endpoints := monitorEndpoints(t, docs)
		g.Expect(endpoints).To(HaveLen(len(monitor.Spec.Endpoints)))
		for _, ep := range endpoints {
			g.Expect(ep.Scheme).To(Equal("https"), "ServiceMonitor %s scrapes port %s over %q", monitor.Name, ep.Port, ep.Scheme)
			g.Expect(ep.BearerTokenFile != "" || (ep.Authorization != nil && ep.Authorization.Credentials != nil)).To(BeTrue(),
				"ServiceMonitor %s must send a bearer token, or every scrape is refused", monitor.Name)
			g.Expect(ep.TLSConfig).NotTo(BeNil(), "ServiceMonitor %s has no tlsConfig", monitor.Name)
			g.Expect(ep.TLSConfig.InsecureSkipVerify).To(BeFalse(), "Prometheus must verify the server it sends its token to")
			g.Expect(ep.TLSConfig.CA.Secret).NotTo(BeNil(), "ServiceMonitor %s must verify against cert-manager's Secret", monitor.Name)
			g.Expect(ep.TLSConfig.CA.Secret.Key).To(Equal("ca.crt"))
			cert := certificateFor(docs, ep.TLSConfig.CA.Secret.Name)
			g.Expect(cert).NotTo(BeNil(), "no rendered Certificate writes Secret %s", ep.TLSConfig.CA.Secret.Name)
			g.Expect(cert.GetNamespace()).To(Equal(monitor.Namespace), "the Prometheus Operator reads the CA Secret in the ServiceMonitor's namespace")
			dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
			g.Expect(dnsNames).To(ContainElement(ep.TLSConfig.ServerName), "serverName must be a name of Certificate %s", name(cert))
			g.Expect(ep.TLSConfig.ServerName).To(Equal(svc.Name + "." + svc.Namespace + ".svc"))
		}
	})

	// The metrics filter authenticates scrapers with TokenReviews and
	// authorizes them with SubjectAccessReviews, both as the manager.
	t.Run("the manager may review scrapers, and a role may scrape", func(t *testing.T) {
		g := NewWithT(t)
		granted := grantedTo(t, docs, deploy.Namespace, deploy.Spec.Template.Spec.ServiceAccountName)
		g.Expect(granted).To(ContainElement(allows("authentication.k8s.io", "tokenreviews", "create")), "create tokenreviews")
		g.Expect(granted).To(ContainElement(allows("authorization.k8s.io", "subjectaccessreviews", "create")), "create subjectaccessreviews")
		var readers []string
		for _, obj := range ofKind(docs, "ClusterRole") {
			role := convert[rbacv1.ClusterRole](t, obj)
			if slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
				return slices.Contains(r.NonResourceURLs, "/metrics") && slices.Contains(r.Verbs, "get")
			}) {
				readers = append(readers, role.Name)
			}
		}
		g.Expect(readers).To(ConsistOf("tokenwarden-metrics-reader"), "docs/metrics.md tells Prometheus' ServiceAccount to be bound to it")
	})
}

// flagValue returns the value of --name in args, as the flag package reads
// it: "--name=value" or "-name=value", or "true" for a bare boolean
// "--name".
func flagValue(args []string, name string) (string, bool) {
	value, found := "", false
	for _, arg := range args {
		arg = strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
		if arg == name {
			value, found = "true", true
		} else if v, ok := strings.CutPrefix(arg, name+"="); ok {
			value, found = v, true
		}
	}
	return value, found
}

// mountedSecret returns the Secret mounted at path in container, or "".
func mountedSecret(deploy *appsv1.Deployment, container *corev1.Container, path string) string {
	for _, m := range container.VolumeMounts {
		if strings.TrimSuffix(m.MountPath, "/") != strings.TrimSuffix(path, "/") {
			continue
		}
		for _, v := range deploy.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return v.Secret.SecretName
			}
		}
	}
	return ""
}

// certificateFor returns the rendered cert-manager Certificate that writes
// Secret secret, or nil.
func certificateFor(docs []*unstructured.Unstructured, secret string) *unstructured.Unstructured {
	for _, cert := range ofKind(docs, "Certificate") {
		if name, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); name == secret {
			return cert
		}
	}
	return nil
}

// securedMonitor is the part of a ServiceMonitor securedEndpoint reads.
type securedMonitor struct {
	Spec struct {
		Endpoints []securedEndpoint `json:"endpoints"`
	} `json:"spec"`
}

// monitorEndpoints decodes the endpoints of the one ServiceMonitor.
func monitorEndpoints(t *testing.T, docs []*unstructured.Unstructured) []securedEndpoint {
	t.Helper()
	return convert[securedMonitor](t, only(t, docs, "ServiceMonitor")).Spec.Endpoints
}

// grantedTo returns the rules of every ClusterRole bound, by a
// ClusterRoleBinding, to the ServiceAccount namespace/name.
func grantedTo(t *testing.T, docs []*unstructured.Unstructured, namespace, serviceAccount string) []rbacv1.PolicyRule {
	t.Helper()
	var rules []rbacv1.PolicyRule
	for _, obj := range ofKind(docs, "ClusterRoleBinding") {
		binding := convert[rbacv1.ClusterRoleBinding](t, obj)
		if binding.RoleRef.Kind != "ClusterRole" || !slices.ContainsFunc(binding.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Namespace == namespace && s.Name == serviceAccount
		}) {
			continue
		}
		if role := find(docs, "ClusterRole", "", binding.RoleRef.Name); role != nil {
			rules = append(rules, convert[rbacv1.ClusterRole](t, role).Rules...)
		}
	}
	return rules
}

// allows matches a rule granting verb on resource of group.
func allows(group, resource, verb string) OmegaMatcher {
	return Satisfy(func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb)
	})
}
