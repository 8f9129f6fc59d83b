package manifests

import (
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestNetworkPolicies checks config/network-policy as rendered with the
// install: once a policy selects the manager's pods, anything it does not
// allow is dropped, so every port the Services send to must be allowed,
// and every port a policy names must be one the manager serves.
func TestNetworkPolicies(t *testing.T) {
	docs := kustomizeBuild(t, "config/default")
	deploy := convert[appsv1.Deployment](t, only(t, docs, "Deployment"))
	manager := findContainer(deploy, "manager")
	if manager == nil {
		t.Fatalf("Deployment %s has no container named manager", deploy.Name)
	}
	podLabels := labels.Set(deploy.Spec.Template.Labels)

	// ingress maps each manager container port to the peers allowed to it.
	ingress := map[int32][]networkingv1.NetworkPolicyPeer{}
	var egress []networkingv1.NetworkPolicyEgressRule
	var ingressSelected, egressSelected bool
	for _, obj := range ofKind(docs, "NetworkPolicy") {
		policy := convert[networkingv1.NetworkPolicy](t, obj)
		g := NewWithT(t)
		g.Expect(policy.Namespace).To(Equal(deploy.Namespace), "NetworkPolicy %s", policy.Name)
		selector, err := metav1.LabelSelectorAsSelector(&policy.Spec.PodSelector)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(selector.Matches(podLabels)).To(BeTrue(), "NetworkPolicy %s selects no manager pod", policy.Name)
		g.Expect(policy.Spec.PolicyTypes).NotTo(BeEmpty(), "NetworkPolicy %s: spell out policyTypes", policy.Name)
		ingressSelected = ingressSelected || slices.Contains(policy.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		egressSelected = egressSelected || slices.Contains(policy.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		for _, rule := range policy.Spec.Ingress {
			g.Expect(rule.Ports).NotTo(BeEmpty(), "NetworkPolicy %s opens every port", policy.Name)
			for _, p := range rule.Ports {
				port := containerPort(manager, p.Port)
				g.Expect(port).NotTo(BeNil(), "NetworkPolicy %s allows port %s, which the manager container does not have", policy.Name, p.Port)
				if port != nil {
					ingress[port.ContainerPort] = append(ingress[port.ContainerPort], rule.From...)
				}
			}
		}
		egress = append(egress, policy.Spec.Egress...)
	}
	g := NewWithT(t)
	g.Expect(ingressSelected).To(BeTrue(), "no NetworkPolicy restricts ingress to the manager pods")
	g.Expect(egressSelected).To(BeTrue(), "no NetworkPolicy restricts egress from the manager pods")

	// Every Service in front of the manager reaches it.
	for _, obj := range ofKind(docs, "Service") {
		svc := convert[corev1.Service](t, obj)
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			port := containerPort(manager, &sp.TargetPort)
			g.Expect(port).NotTo(BeNil(), "Service %s targets %s, which the manager container does not have", svc.Name, sp.TargetPort.String())
			if port != nil {
				g.Expect(ingress).To(HaveKey(port.ContainerPort), "no NetworkPolicy lets Service %s's traffic in to port %d", svc.Name, port.ContainerPort)
			}
		}
	}

	// Metrics only from the namespaces labelled for it; webhooks and
	// verification from anywhere, since kube-apiserver calls them from
	// outside the pod network (see config/network-policy).
	metrics := containerPort(manager, ptrTo(intstr.FromString(metricsPort)))
	g.Expect(metrics).NotTo(BeNil())
	g.Expect(ingress[metrics.ContainerPort]).To(ConsistOf(networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"metrics": "enabled"}},
	}), "metrics from namespaces labelled metrics=enabled only")

	// Egress to the API server's ports only: nothing open to every port.
	g.Expect(egress).NotTo(BeEmpty())
	for _, rule := range egress {
		g.Expect(rule.Ports).NotTo(BeEmpty(), "an egress rule opens every port")
	}
}

// containerPort returns the port of container that port names, by name or
// number, or nil.
func containerPort(container *corev1.Container, port *intstr.IntOrString) *corev1.ContainerPort {
	if port == nil {
		return nil
	}
	for i, p := range container.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return &container.Ports[i]
		}
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }
