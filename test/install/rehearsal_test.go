// Package install rehearses an install the way a platform team performs
// one: the rendered dist/install.yaml applied for real to a fresh control
// plane that runs kube-controller-manager, the operator run from its image
// as two replicas under the ServiceAccount and RBAC the install ships, and
// the README's flow walked as its users. Nothing in it runs as a cluster
// admin but the steps a cluster admin performs.
//
// What a process on one machine cannot do as a pod does is played by
// stand-ins, each written once: a test CA in cert-manager's part
// (certs_test.go), loopback proxies in kube-proxy's (service_test.go), and
// a kubelet's way of starting the container (pod_test.go, which lists the
// deviations from the Deployment). The webhook configurations are the one
// deviation in what ships: their Service references are swapped for the
// https://127.0.0.1 URLs of the Service stand-ins, because kube-apiserver
// here has no route to a cluster IP and tests send traffic to loopback only.
package install

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/hack/helmchart/chart"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
	"github.com/tokenwarden/tokenwarden/test/image"
)

// The users of the walk. ops is an admin through the shipped
// tokenwarden-admin ClusterRole, jane a team owner and eve a stranger, both
// with the shipped tokenwarden-editor role in the namespace, so that their
// refusals come from admission and not from RBAC.
const (
	ops  = "ops@example.com"
	jane = "jane@example.com"
	eve  = "eve@example.com"

	samplesNamespace = "payments"
	// leaseName is the operator's leader election ID.
	leaseName = "tokenwarden.auth.tokenwarden.io"
)

var repoRoot = func() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}()

type rehearsal struct {
	t   *testing.T
	dir string

	img     image.Info
	install []byte
	docs    []*unstructured.Unstructured

	env             *envtest.Environment
	cfg             *rest.Config
	admin           client.Client
	kubectlPath     string
	adminKubeconfig string
	ca              *testCA
	caFile          string

	namespace string
	deploy    *appsv1.Deployment
	replicas  []*replica
	// services holds the listener standing in for each Service port, by
	// "<service>/<port name>".
	services  map[string]net.Listener
	proxies   []*serviceProxy
	verifySvc string

	// values seen in Secrets, which no log may hold.
	values []string

	// scrape reads a replica's metrics as Prometheus does; set by the
	// metrics step.
	scrape func(ctx context.Context, rep *replica) (int, string, error)
}

// TestInstallRehearsal walks the install and the README's flow; each step
// needs the ones before it, so the first failure ends the walk.
func TestInstallRehearsal(t *testing.T) {
	if testing.Short() {
		t.Skip("the install rehearsal starts a control plane and two operators")
	}
	// Kept when the walk fails: the replicas' and control plane's logs are
	// what tells why.
	dir, err := os.MkdirTemp("", "tokenwarden-rehearsal-")
	if err != nil {
		t.Fatal(err)
	}
	r := &rehearsal{t: t, dir: dir, services: map[string]net.Listener{}}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"the image runs as a non-root user", r.loadImage},
		{"dist/install.yaml renders with the image's tag", r.render},
		{"a fresh control plane with its controller manager", r.startControlPlane},
		{"the install applies for real", r.apply},
		{"cert-manager's part: certificates and CA bundles", r.certificates},
		{"two replicas under the shipped RBAC, one leader", r.startReplicas},
		{"the samples apply as their users", r.samples},
		{"admission refuses and warns as the README says", r.admission},
		{"issuance: the Secret holds the value the status digests", r.issuance},
		{"verification through the verification Service", r.verification},
		{"kube-apiserver authenticates a token through TokenReview", r.tokenReview},
		{"disable refuses the token at once", r.disable},
		{"a Team change invalidates its tokens", r.invalidation},
		{"metrics scraped as the ServiceMonitor does", r.metrics},
		{"the leader hands over to the other replica", r.handover},
		{"deleting a namespace with tokens completes", r.namespaceDeletion},
		{"the operator's logs hold no forbidden and no token value", r.logs},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			t.FailNow()
		}
	}
}

func (r *rehearsal) stop() {
	for _, rep := range r.replicas {
		rep.Stop(5 * time.Second)
	}
	for _, p := range r.proxies {
		_ = p.Close()
	}
	for _, l := range r.services {
		_ = l.Close()
	}
	if r.env != nil {
		_ = r.env.Stop()
	}
}

func (r *rehearsal) loadImage(t *testing.T) {
	g := NewWithT(t)
	img, err := image.Load(filepath.Join(r.dir, "image"))
	g.Expect(err).NotTo(HaveOccurred())
	r.img = img
	g.Expect(img.User).To(Equal("65532:65532"))
	t.Logf("image %s, digest %s, %d bytes, user %s, entrypoint %v", img.Reference, img.Digest, img.Size, img.User, img.Entrypoint)
}

// render does what `make build-installer` does, on a copy of config/ so the
// checkout is left as it was.
func (r *rehearsal) render(t *testing.T) {
	g := NewWithT(t)
	kustomize := os.Getenv("KUSTOMIZE")
	if kustomize == "" {
		kustomize = filepath.Join(repoRoot, "bin", "kustomize")
	}
	config := filepath.Join(r.dir, "config")
	g.Expect(os.CopyFS(config, os.DirFS(filepath.Join(repoRoot, "config")))).To(Succeed())
	edit := exec.CommandContext(t.Context(), kustomize, "edit", "set", "image", "controller="+r.img.Reference)
	edit.Dir = filepath.Join(config, "manager")
	out, err := edit.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "kustomize edit: %s", out)
	build := exec.CommandContext(t.Context(), kustomize, "build", filepath.Join(config, "default"))
	build.Stderr = os.Stderr
	r.install, err = build.Output()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(filepath.Join(r.dir, "install.yaml"), r.install, 0o600)).To(Succeed())
	r.docs, err = chart.Decode(r.install)
	g.Expect(err).NotTo(HaveOccurred())

	deploys := ofKind(r.docs, "Deployment")
	g.Expect(deploys).To(HaveLen(1))
	r.deploy = &appsv1.Deployment{}
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(deploys[0].Object, r.deploy)).To(Succeed())
	r.namespace = r.deploy.Namespace
	g.Expect(r.deploy.Spec.Template.Spec.Containers[0].Image).To(Equal(r.img.Reference), "the Deployment runs the image just built")

	// The Services' stand-ins listen from now on, so that the API server can
	// be told where the verification Service is before it starts.
	for _, svc := range ofKind(r.docs, "Service") {
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		for _, p := range ports {
			name, _, _ := unstructured.NestedString(p.(map[string]any), "name")
			l, err := net.Listen("tcp", "127.0.0.1:0")
			g.Expect(err).NotTo(HaveOccurred())
			r.services[svc.GetName()+"/"+name] = l
		}
		if svc.GetLabels()["app.kubernetes.io/component"] == "verify" {
			r.verifySvc = svc.GetName()
		}
	}
	g.Expect(r.verifySvc).NotTo(BeEmpty(), "the install renders a verification Service")
	t.Logf("rendered %d objects; Deployment %s/%s, image %s", len(r.docs), r.namespace, r.deploy.Name, r.img.Reference)
}

// startControlPlane starts kube-apiserver, etcd and kube-controller-manager
// with nothing of Tokenwarden's installed: the install brings its CRDs,
// RBAC and policies itself. kube-apiserver authenticates bearer tokens
// through the verification Service, as docs/verification.md sets it up.
func (r *rehearsal) startControlPlane(t *testing.T) {
	g := NewWithT(t)
	var err error
	r.ca, err = newTestCA()
	g.Expect(err).NotTo(HaveOccurred())
	r.caFile = filepath.Join(r.dir, "ca.crt")
	g.Expect(os.WriteFile(r.caFile, r.ca.certPEM, 0o600)).To(Succeed())
	authn := filepath.Join(r.dir, "authn-webhook.kubeconfig")
	verifyAddr := r.serviceAddr(t, r.verifySvc, "https")
	g.Expect(clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"tokenwarden": {Server: "https://" + verifyAddr + "/tokenreview", CertificateAuthority: r.caFile}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"kube-apiserver": {}},
		Contexts:       map[string]*clientcmdapi.Context{"tokenwarden": {Cluster: "tokenwarden", AuthInfo: "kube-apiserver"}},
		CurrentContext: "tokenwarden",
	}, authn)).To(Succeed())

	log, err := os.Create(filepath.Join(r.dir, "controlplane.log"))
	g.Expect(err).NotTo(HaveOccurred())
	r.env, err = controlplane.New(controlplane.Options{
		Output:            log,
		ControllerManager: true,
		APIServerArgs: map[string][]string{
			"authentication-token-webhook-config-file": {authn},
			"authentication-token-webhook-version":     {"v1"},
			"authentication-token-webhook-cache-ttl":   {"1s"},
		},
	})
	g.Expect(err).NotTo(HaveOccurred())
	r.env.CRDs = nil
	r.cfg, err = controlplane.StartGuarded(r.env)
	g.Expect(err).NotTo(HaveOccurred(), "control plane log: %s", log.Name())
	g.Expect(controlplane.StartControllerManager(r.env, log)).To(Succeed(), "control plane log: %s", log.Name())
	scheme, err := controlplane.NewScheme()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	r.admin, err = client.New(r.cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	admin, err := r.env.AddUser(envtest.User{Name: "rehearsal-admin", Groups: []string{"system:masters"}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig, err := admin.KubeConfig()
	g.Expect(err).NotTo(HaveOccurred())
	r.adminKubeconfig = filepath.Join(r.dir, "admin.kubeconfig")
	g.Expect(os.WriteFile(r.adminKubeconfig, kubeconfig, 0o600)).To(Succeed())
	assets, err := controlplane.ResolveAssetsDir("")
	g.Expect(err).NotTo(HaveOccurred())
	r.kubectlPath = filepath.Join(assets, "kubectl")

	// kube-controller-manager is working once it has given the default
	// namespace its ServiceAccount.
	g.Eventually(func() error {
		return r.admin.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{})
	}).WithTimeout(60 * time.Second).Should(Succeed())
}

// apply applies the rendered install with kubectl, as a cluster admin
// would. The kinds of cert-manager and the Prometheus Operator get
// stand-in CRDs first, accepting any content, so that the install applies
// whole, as it does in a cluster that has both.
func (r *rehearsal) apply(t *testing.T) {
	g := NewWithT(t)
	standIns := map[string]bool{}
	for _, doc := range r.docs {
		gvk := doc.GroupVersionKind()
		if gvk.Group != "cert-manager.io" && gvk.Group != "monitoring.coreos.com" {
			continue
		}
		key := gvk.String()
		if standIns[key] {
			continue
		}
		standIns[key] = true
		g.Expect(r.admin.Create(t.Context(), standInCRD(gvk.Group, gvk.Version, gvk.Kind))).To(Succeed())
	}
	g.Eventually(func() error {
		_, err := r.kubectl(t, "apply", "--server-side", "-f", filepath.Join(r.dir, "install.yaml"))
		return err
	}).WithTimeout(30*time.Second).Should(Succeed(), "the stand-in CRDs become established within seconds")
	for _, doc := range r.docs {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(doc.GroupVersionKind())
		g.Expect(r.admin.Get(t.Context(), client.ObjectKeyFromObject(doc), obj)).To(Succeed(), "%s %s", doc.GetKind(), doc.GetName())
	}
	t.Logf("applied %d objects (stand-in CRDs for %s)", len(r.docs), strings.Join(slices.Sorted(maps.Keys(standIns)), ", "))
}

func (r *rehearsal) certificates(t *testing.T) {
	g := NewWithT(t)
	issued, err := r.ca.issueCertificates(t.Context(), r.admin)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(issued).To(BeNumerically(">=", 2), "the webhooks' and the verification server's certificates")
	wired, err := wireWebhooks(t.Context(), r.admin, func(ref *admissionregistrationv1.ServiceReference) (string, error) {
		port := int32(443)
		if ref.Port != nil {
			port = *ref.Port
		}
		name, err := r.servicePortName(ref.Name, port)
		if err != nil {
			return "", err
		}
		return "https://" + r.serviceAddr(t, ref.Name, name) + ptr.Deref(ref.Path, ""), nil
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wired).To(BeNumerically(">=", 3), "the mutating webhook for ApiTokens, the validating ones for ApiTokens and Teams")
	t.Logf("issued %d certificates; injected the CA into %d webhooks", issued, wired)
}

// startReplicas runs the Deployment's replicas, authenticated as its
// ServiceAccount through a TokenRequest, and points each Service's
// stand-in at them.
func (r *rehearsal) startReplicas(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	sa := r.deploy.Spec.Template.Spec.ServiceAccountName
	g.Expect(sa).NotTo(BeEmpty())
	clientset, err := kubernetes.NewForConfig(r.cfg)
	g.Expect(err).NotTo(HaveOccurred())
	review, err := clientset.CoreV1().ServiceAccounts(r.namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig := filepath.Join(r.dir, "serviceaccount.kubeconfig")
	g.Expect(clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"cluster": {Server: r.cfg.Host, CertificateAuthorityData: r.cfg.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{sa: {Token: review.Status.Token}},
		Contexts:       map[string]*clientcmdapi.Context{"pod": {Cluster: "cluster", AuthInfo: sa, Namespace: r.namespace}},
		CurrentContext: "pod",
	}, kubeconfig)).To(Succeed())

	replicas := int(ptr.Deref(r.deploy.Spec.Replicas, 1))
	g.Expect(replicas).To(Equal(2))
	for i := range replicas {
		rep, err := startReplica(ctx, r.admin, r.deploy, r.img.Binary, kubeconfig, r.dir, i)
		g.Expect(err).NotTo(HaveOccurred())
		r.replicas = append(r.replicas, rep)
	}
	r.startServiceProxies(t)
	for _, rep := range r.replicas {
		g.Eventually(func() bool { return rep.Ready(ctx, r.deploy) }).WithTimeout(90*time.Second).Should(BeTrue(),
			"replica %s ready; its output:\n%s", rep.name, rep.Output())
	}
	holder := r.eventuallyLeader(t, nil)
	t.Logf("%d replicas ready as %s; leader %s", replicas, sa, holder)
}

// startServiceProxies points every Service port's stand-in at the live
// replicas' ports its targetPort resolves to.
func (r *rehearsal) startServiceProxies(t *testing.T) {
	g := NewWithT(t)
	for _, svc := range ofKind(r.docs, "Service") {
		typed := &corev1.Service{}
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(svc.Object, typed)).To(Succeed())
		g.Expect(typed.Spec.Selector).To(Equal(r.deploy.Spec.Template.Labels), "Service %s selects the manager's pods", typed.Name)
		for _, port := range typed.Spec.Ports {
			target := port.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(port.Port)
			}
			for _, rep := range r.replicas {
				_, err := rep.Addr(r.deploy, target)
				g.Expect(err).NotTo(HaveOccurred(), "Service %s port %s targets %s", typed.Name, port.Name, target.String())
			}
			listener := r.services[typed.Name+"/"+port.Name]
			r.proxies = append(r.proxies, newServiceProxy(listener, func() []string {
				var addrs []string
				for _, rep := range r.replicas {
					if addr, err := rep.Addr(r.deploy, target); err == nil && rep.Alive() {
						addrs = append(addrs, addr)
					}
				}
				return addrs
			}))
		}
	}
}

func (r *rehearsal) samples(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	samples := filepath.Join(repoRoot, "config", "samples")
	// The admin of the cluster makes the namespace and gives people their
	// roles: ops is a Tokenwarden admin, jane and eve may edit tokens in it.
	_, err := r.kubectl(t, "apply", "-f", filepath.Join(samples, "00_namespace.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	prefix := strings.TrimSuffix(r.deploy.Name, "controller-manager")
	g.Expect(r.admin.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ops-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: prefix + "admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: ops}},
	})).To(Succeed())
	g.Expect(r.admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "token-editors", Namespace: samplesNamespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: prefix + "editor"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: jane},
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: eve},
		},
	})).To(Succeed())
	// ops applies the Team and the three tokens. The RBAC authorizer may
	// take a moment to see the new binding, so the first apply is retried.
	g.Eventually(func() error {
		_, err := r.kubectl(t, "--as", ops, "apply",
			"-f", filepath.Join(samples, "01_team_payments.yaml"),
			"-f", filepath.Join(samples, "02_apitoken_team.yaml"),
			"-f", filepath.Join(samples, "03_apitoken_wildcard.yaml"),
			"-f", filepath.Join(samples, "04_apitoken_admin.yaml"))
		return err
	}).WithTimeout(30 * time.Second).Should(Succeed())
	_, err = r.kubectl(t, "apply", "-f", filepath.Join(samples, "05_consumer_deployment.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	for _, name := range []string{"payments-ci", "oncall-tools", "platform-admin"} {
		r.eventuallyPhase(t, name, v1alpha1.PhaseActive)
	}
	tok := r.token(t, "platform-admin")
	g.Expect(tok.Status.Creator).NotTo(BeNil())
	g.Expect(tok.Status.Creator.Username).To(Equal(ops))
	t.Logf("Team payments and tokens payments-ci (Team), oncall-tools (Wildcard), platform-admin (Admin) Active, created by %s", ops)
}

func (r *rehearsal) admission(t *testing.T) {
	g := NewWithT(t)
	samples := filepath.Join(repoRoot, "config", "samples")
	// create, as the README has it: an apply of what is already there
	// changes nothing, sends nothing and so is refused by no one.
	_, err := r.kubectl(t, "--as", eve, "create", "-f", filepath.Join(samples, "03_apitoken_wildcard.yaml"))
	g.Expect(err).To(MatchError(ContainSubstring("is neither an admin nor an owner of any team")))
	_, err = r.kubectl(t, "--as", jane, "create", "-f", filepath.Join(samples, "04_apitoken_admin.yaml"))
	g.Expect(err).To(MatchError(ContainSubstring("is not a Tokenwarden admin")))
	r.applyTeamToken(t, jane, "jane-ci")
	g.Expect(r.token(t, "jane-ci").Status.Creator.Username).To(Equal(jane))
	// The API server's own validation names each field.
	_, err = r.kubectlIn(t, `apiVersion: auth.tokenwarden.io/v1alpha1
kind: ApiToken
metadata: {name: broken, namespace: payments}
spec: {type: Team, lifetime: 30days, scopes: ["read orders"]}
`, "--as", jane, "apply", "-f", "-")
	g.Expect(err).To(MatchError(And(ContainSubstring("spec.lifetime"), ContainSubstring("spec.scopes[0]"))))
	t.Log("eve refused a Wildcard token, jane an Admin token, jane's Team token admitted and Active, a malformed token refused naming its fields")
}

func (r *rehearsal) issuance(t *testing.T) {
	g := NewWithT(t)
	for _, name := range []string{"payments-ci", "oncall-tools", "jane-ci"} {
		tok := r.token(t, name)
		value := r.secretValue(t, name)
		sum := sha256.Sum256([]byte(value))
		g.Expect(tok.Status.TokenHash).To(ContainSubstring(hex.EncodeToString(sum[:])), "status of %s digests its Secret's value", name)
		g.Expect(value).To(HavePrefix(tok.Status.TokenPrefix))
	}
	t.Log("each Secret holds a value whose SHA-256 is the status's digest")
}

func (r *rehearsal) verification(t *testing.T) {
	g := NewWithT(t)
	value := r.secretValue(t, "platform-admin-token")
	tok := r.token(t, "platform-admin")
	code, body, reason := r.verify(t, value)
	g.Expect(code).To(Equal(http.StatusOK), "reason %s", reason)
	var answer struct {
		User string `json:"user"`
		Type string `json:"type"`
	}
	g.Expect(json.Unmarshal([]byte(body), &answer)).To(Succeed())
	g.Expect(answer.User).To(Equal(fmt.Sprintf("tokenwarden:%s:platform-admin:%s", samplesNamespace, tok.UID)))
	g.Expect(answer.Type).To(Equal("Admin"))
	code, _, reason = r.verify(t, "garbage")
	g.Expect(code).To(Equal(http.StatusUnauthorized))
	g.Expect(reason).To(Equal("Malformed"))
	t.Logf("/verify at Service %s (%s), TLS name checked: 200 as %s; garbage 401 %s", r.verifySvc, r.serviceAddr(t, r.verifySvc, "https"), answer.User, reason)
}

func (r *rehearsal) tokenReview(t *testing.T) {
	g := NewWithT(t)
	value := r.secretValue(t, "platform-admin-token")
	tok := r.token(t, "platform-admin")
	cmd := exec.CommandContext(t.Context(), r.kubectlPath, "--kubeconfig", os.DevNull, "--server", r.cfg.Host,
		"--certificate-authority", r.writeFile(t, "apiserver-ca.crt", r.cfg.CAData), "--token", value,
		"auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	var out []byte
	g.Eventually(func() error {
		var err error
		out, err = cmd.Output()
		cmd = exec.CommandContext(t.Context(), cmd.Path, cmd.Args[1:]...)
		return err
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(string(out)).To(Equal(fmt.Sprintf("tokenwarden:%s:platform-admin:%s", samplesNamespace, tok.UID)))
	t.Logf("kubectl auth whoami with the Admin token: %s", out)
}

func (r *rehearsal) disable(t *testing.T) {
	g := NewWithT(t)
	value := r.secretValue(t, "payments-ci")
	code, _, _ := r.verify(t, value)
	g.Expect(code).To(Equal(http.StatusOK))
	_, err := r.kubectl(t, "--as", ops, "-n", samplesNamespace, "patch", "apitoken", "payments-ci", "--type", "merge", "-p", `{"spec":{"disabled":true}}`)
	g.Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	g.Eventually(func() string {
		_, _, reason := r.verify(t, value)
		return reason
	}).WithTimeout(5 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal("Disabled"))
	refused := time.Since(start)
	r.eventuallyPhase(t, "payments-ci", v1alpha1.PhaseDisabled)
	t.Logf("disabled payments-ci: refused (Disabled) after %s, phase Disabled", refused.Round(time.Millisecond))
}

func (r *rehearsal) invalidation(t *testing.T) {
	g := NewWithT(t)
	value := r.secretValue(t, "jane-ci")
	out, err := r.kubectl(t, "--as", ops, "patch", "team", samplesNamespace, "--type", "json", "-p", `[{"op":"remove","path":"/spec/owners/0"}]`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(ContainSubstring("this change invalidates 1 token(s)"), "the warning kubectl prints")
	r.eventuallyPhase(t, "jane-ci", v1alpha1.PhaseInvalidated)
	g.Eventually(func() string { return r.secretValue(t, "jane-ci") }).WithTimeout(10 * time.Second).Should(BeEmpty())
	_, _, reason := r.verify(t, value)
	g.Expect(reason).To(Equal("Invalidated"))
	t.Logf("removing jane from the Team warned, then invalidated jane-ci: value withdrawn, verification refused (%s)", reason)
}

// metrics scrapes every replica as Prometheus does with the ServiceMonitor
// the install ships: its port, scheme, path and TLS settings, with the
// token of a ServiceAccount bound to the metrics-reader role.
func (r *rehearsal) metrics(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	monitors := ofKind(r.docs, "ServiceMonitor")
	g.Expect(monitors).To(HaveLen(1))
	endpoints, _, _ := unstructured.NestedSlice(monitors[0].Object, "spec", "endpoints")
	g.Expect(endpoints).To(HaveLen(1))
	endpoint := endpoints[0].(map[string]any)
	portName, _, _ := unstructured.NestedString(endpoint, "port")
	scheme, _, _ := unstructured.NestedString(endpoint, "scheme")
	path, _, _ := unstructured.NestedString(endpoint, "path")
	serverName, _, _ := unstructured.NestedString(endpoint, "tlsConfig", "serverName")

	// The Service the monitor selects names the pods' port.
	var target intstr.IntOrString
	for _, svc := range ofKind(r.docs, "Service") {
		if svc.GetLabels()["app.kubernetes.io/component"] != "metrics" {
			continue
		}
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		for _, p := range ports {
			port := p.(map[string]any)
			if port["name"] == portName {
				target = intstr.Parse(fmt.Sprint(port["targetPort"]))
			}
		}
	}
	g.Expect(target.String()).NotTo(Equal("0"), "the metrics Service has port %q", portName)

	httpClient := &http.Client{Timeout: 10 * time.Second}
	header := http.Header{}
	if scheme == "https" {
		// Prometheus's ServiceAccount, bound to the role the install ships
		// for scraping.
		var reader string
		for _, role := range ofKind(r.docs, "ClusterRole") {
			rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
			for _, rule := range rules {
				urls, _, _ := unstructured.NestedStringSlice(rule.(map[string]any), "nonResourceURLs")
				if slices.Contains(urls, "/metrics") {
					reader = role.GetName()
				}
			}
		}
		g.Expect(reader).NotTo(BeEmpty(), "the install ships a ClusterRole for reading /metrics")
		g.Expect(r.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "monitoring"}})).To(Succeed())
		g.Expect(r.admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prometheus", Namespace: "monitoring"}})).To(Succeed())
		g.Expect(r.admin.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "prometheus-tokenwarden-metrics"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "prometheus", Namespace: "monitoring"}},
		})).To(Succeed())
		clientset, err := kubernetes.NewForConfig(r.cfg)
		g.Expect(err).NotTo(HaveOccurred())
		tr, err := clientset.CoreV1().ServiceAccounts("monitoring").CreateToken(ctx, "prometheus", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		header.Set("Authorization", "Bearer "+tr.Status.Token)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(r.ca.certPEM)
		httpClient.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}}

		// Without a token nothing is served.
		addr, err := r.replicas[0].Addr(r.deploy, target)
		g.Expect(err).NotTo(HaveOccurred())
		resp, err := httpClient.Get("https://" + addr + path)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(BeElementOf(http.StatusUnauthorized, http.StatusForbidden))
	}
	r.scrape = func(ctx context.Context, rep *replica) (int, string, error) {
		addr, err := rep.Addr(r.deploy, target)
		if err != nil {
			return 0, "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
		if err != nil {
			return 0, "", err
		}
		req.Header = header.Clone()
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		data, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data), err
	}
	for _, rep := range r.replicas {
		var body string
		g.Eventually(func() (int, error) {
			code, data, err := r.scrape(ctx, rep)
			body = data
			return code, err
		}).WithTimeout(20*time.Second).Should(Equal(http.StatusOK), "scrape of %s", rep.name)
		g.Expect(body).To(ContainSubstring("tokenwarden_tokens{"), "replica %s serves the token gauge", rep.name)
	}
	t.Logf("scraped %d replicas at %s://<pod>:%s%s (server name %q)", len(r.replicas), scheme, target.String(), path, serverName)
}

// handover stops the leader as the kubelet does on a rollout; the other
// replica takes the Lease and issues a new token.
func (r *rehearsal) handover(t *testing.T) {
	g := NewWithT(t)
	holder := r.eventuallyLeader(t, nil)
	var leader, standby *replica
	for _, rep := range r.replicas {
		if r.isLeader(t, rep) {
			leader = rep
		} else {
			standby = rep
		}
	}
	g.Expect(leader).NotTo(BeNil(), "one replica reports itself leader")
	g.Expect(standby).NotTo(BeNil(), "one replica is a standby")
	grace := time.Duration(ptr.Deref(r.deploy.Spec.Template.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	start := time.Now()
	leader.Stop(grace)
	next := r.eventuallyLeader(t, &holder)
	took := time.Since(start)
	g.Eventually(func() bool { return r.isLeader(t, standby) }).WithTimeout(30 * time.Second).Should(BeTrue())
	r.applyTeamToken(t, ops, "after-handover")
	t.Logf("leader %s stopped; %s (%s) took the Lease after %s and issued a new token", leader.name, standby.name, next, took.Round(time.Millisecond))
}

// namespaceDeletion deletes the samples' namespace, as a team cleaning up
// does: kube-controller-manager's namespace controller deletes its
// ApiTokens, which the admission webhook admits, and the garbage collector
// their Secrets.
func (r *rehearsal) namespaceDeletion(t *testing.T) {
	g := NewWithT(t)
	// The garbage collector removes an ApiToken's Secret through its owner
	// reference.
	_, err := r.kubectl(t, "--as", ops, "-n", samplesNamespace, "delete", "apitoken", "oncall-tools")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() bool {
		err := r.admin.Get(t.Context(), client.ObjectKey{Namespace: samplesNamespace, Name: "oncall-tools"}, &corev1.Secret{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(60*time.Second).Should(BeTrue(), "the garbage collector deletes the Secret of a deleted ApiToken")

	start := time.Now()
	_, err = r.kubectl(t, "delete", "namespace", samplesNamespace, "--timeout=120s")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(r.admin.Get(t.Context(), client.ObjectKey{Name: samplesNamespace}, &corev1.Namespace{}))
	}).WithTimeout(120 * time.Second).Should(BeTrue())
	t.Logf("Secret of a deleted ApiToken collected; namespace %s with its tokens deleted in %s", samplesNamespace, time.Since(start).Round(time.Millisecond))
}

func (r *rehearsal) logs(t *testing.T) {
	g := NewWithT(t)
	for _, rep := range r.replicas {
		out := rep.Output()
		g.Expect(out).NotTo(BeEmpty())
		for line := range strings.SplitSeq(out, "\n") {
			g.Expect(strings.ToLower(line)).NotTo(ContainSubstring("forbidden"), "replica %s logged a refusal of its RBAC", rep.name)
		}
		for _, value := range r.values {
			g.Expect(out).NotTo(ContainSubstring(value), "replica %s logged a token value", rep.name)
		}
	}
	t.Logf("%d replicas' logs: no forbidden, none of %d token values", len(r.replicas), len(r.values))
}

// kubectl runs kubectl as the cluster admin, with the arguments that say
// otherwise (--as). It returns stdout and stderr together, where kubectl
// prints admission warnings, and an error holding them on failure.
func (r *rehearsal) kubectl(t *testing.T, args ...string) (string, error) {
	return r.kubectlIn(t, "", args...)
}

func (r *rehearsal) kubectlIn(t *testing.T, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(t.Context(), r.kubectlPath, append([]string{"--kubeconfig", r.adminKubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// applyTeamToken applies, as user, the README's Team token of the payments
// team under name, and waits for it to be Active.
func (r *rehearsal) applyTeamToken(t *testing.T, user, name string) {
	t.Helper()
	_, err := r.kubectlIn(t, fmt.Sprintf(`apiVersion: auth.tokenwarden.io/v1alpha1
kind: ApiToken
metadata: {name: %s, namespace: %s}
spec: {type: Team, teams: [payments], lifetime: 7d, scopes: ["orders:read"]}
`, name, samplesNamespace), "--as", user, "apply", "-f", "-")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	r.eventuallyPhase(t, name, v1alpha1.PhaseActive)
}

func (r *rehearsal) token(t *testing.T, name string) *v1alpha1.ApiToken {
	tok := &v1alpha1.ApiToken{}
	NewWithT(t).Expect(r.admin.Get(t.Context(), client.ObjectKey{Namespace: samplesNamespace, Name: name}, tok)).To(Succeed())
	return tok
}

// secretValue reads a token's value from its Secret (named as the
// ApiToken unless it sets secretName) and remembers it for the log check.
func (r *rehearsal) secretValue(t *testing.T, name string) string {
	secret := &corev1.Secret{}
	NewWithT(t).Expect(r.admin.Get(t.Context(), client.ObjectKey{Namespace: samplesNamespace, Name: name}, secret)).To(Succeed())
	value := string(secret.Data["token"])
	if value != "" && !slices.Contains(r.values, value) {
		r.values = append(r.values, value)
	}
	return value
}

func (r *rehearsal) eventuallyPhase(t *testing.T, name string, phase v1alpha1.ApiTokenPhase) {
	t.Helper()
	NewWithT(t).Eventually(func() v1alpha1.ApiTokenPhase {
		tok := &v1alpha1.ApiToken{}
		if err := r.admin.Get(t.Context(), client.ObjectKey{Namespace: samplesNamespace, Name: name}, tok); err != nil {
			return ""
		}
		return tok.Status.Phase
	}).WithTimeout(30*time.Second).Should(Equal(phase), "phase of %s", name)
}

// eventuallyLeader waits for a Lease holder, other than previous when set.
func (r *rehearsal) eventuallyLeader(t *testing.T, previous *string) string {
	t.Helper()
	var holder string
	NewWithT(t).Eventually(func() bool {
		lease := &coordinationv1.Lease{}
		if err := r.admin.Get(t.Context(), client.ObjectKey{Namespace: r.namespace, Name: leaseName}, lease); err != nil {
			return false
		}
		holder = ptr.Deref(lease.Spec.HolderIdentity, "")
		return holder != "" && (previous == nil || holder != *previous)
	}).WithTimeout(60*time.Second).Should(BeTrue(), "a leader in Lease %s/%s", r.namespace, leaseName)
	return holder
}

// verify asks /verify through the verification Service, checking the
// serving certificate for the Service's DNS name as a client in the
// cluster would.
func (r *rehearsal) verify(t *testing.T, value string) (code int, body, reason string) {
	g := NewWithT(t)
	secret := &corev1.Secret{}
	certs := ofKind(r.docs, "Certificate")
	var dnsName string
	for _, cert := range certs {
		names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		if len(names) > 0 && strings.HasPrefix(names[0], r.verifySvc+".") {
			dnsName = names[0]
			secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
			g.Expect(r.admin.Get(t.Context(), client.ObjectKey{Namespace: r.namespace, Name: secretName}, secret)).To(Succeed())
		}
	}
	g.Expect(dnsName).NotTo(BeEmpty(), "a Certificate names the verification Service")
	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM(secret.Data["ca.crt"])).To(BeTrue())
	httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: dnsName, MinVersion: tls.VersionTLS12},
	}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+r.serviceAddr(t, r.verifySvc, "https")+"/verify", nil)
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+value)
	resp, err := httpClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header.Get("X-Tokenwarden-Reason")
}

func (r *rehearsal) serviceAddr(t *testing.T, service, port string) string {
	l, ok := r.services[service+"/"+port]
	if !ok {
		t.Fatalf("the install renders no Service %s with port %s", service, port)
	}
	return l.Addr().String()
}

// servicePortName finds the name of a Service's port by its number, as
// webhook configurations refer to it.
func (r *rehearsal) servicePortName(service string, number int32) (string, error) {
	for _, svc := range ofKind(r.docs, "Service") {
		if svc.GetName() != service {
			continue
		}
		typed := &corev1.Service{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(svc.Object, typed); err != nil {
			return "", err
		}
		for _, p := range typed.Spec.Ports {
			if p.Port == number {
				return p.Name, nil
			}
		}
	}
	return "", fmt.Errorf("the install renders no Service %s with port %d", service, number)
}

func (r *rehearsal) writeFile(t *testing.T, name string, data []byte) string {
	path := filepath.Join(r.dir, name)
	NewWithT(t).Expect(os.WriteFile(path, data, 0o600)).To(Succeed())
	return path
}

// leaderSample is controller-runtime's gauge of the operator's leadership.
// Every replica here runs on the same host, whose name starts each one's
// identity in the Lease, so the Lease cannot tell them apart.
const leaderSample = `leader_election_master_status{name="` + leaseName + `"} 1`

// isLeader reads the leadership gauge from the replica's metrics.
func (r *rehearsal) isLeader(t *testing.T, rep *replica) bool {
	if r.scrape == nil {
		t.Fatal("metrics are read only after the metrics step")
	}
	code, body, err := r.scrape(t.Context(), rep)
	return err == nil && code == http.StatusOK && strings.Contains(body, leaderSample)
}

// standInCRD accepts any object of a kind whose operator the rehearsal does
// not run.
func standInCRD(group, version, kind string) *apiextensionsv1.CustomResourceDefinition {
	plural := strings.ToLower(kind) + "s"
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Kind: kind, ListKind: kind + "List"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}

func ofKind(docs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, doc := range docs {
		if doc.GetKind() == kind {
			out = append(out, doc)
		}
	}
	return out
}
