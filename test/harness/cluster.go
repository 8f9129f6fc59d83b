// Package harness runs the real operator binary against a real control
// plane, for the fault-injection test and the benchmarks: it starts
// kube-apiserver and etcd, starts, kills and restarts operator processes,
// reads the API server's own request metrics, and checks the invariants
// every ApiToken must satisfy after any crash.
package harness

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

// Owner is the user the harness creates tokens as: a plain user who owns
// the harness's Teams and is no admin, so taking them off a Team really
// takes their tokens' standing away.
const Owner = "harness-owner"

// Cluster is a control plane with Tokenwarden's CRDs.
type Cluster struct {
	// Admin is a client with cluster-admin rights.
	Admin client.Client
	// AsOwner is Admin impersonating Owner: what it creates passes
	// admission as Owner's.
	AsOwner client.Client
	// Config is the admin configuration.
	Config *rest.Config
	// Kubeconfig is a file holding the admin configuration.
	Kubeconfig string
	// CertDir holds tls.crt and tls.key for localhost, CAFile their CA.
	CertDir string
	CAFile  string
	// WebhookPort is where the API server sends admission requests, when
	// webhooks are on.
	WebhookPort int
	// Webhooks says whether admission webhooks are installed.
	Webhooks bool
	// WatchGaps counts the times a Watch missed events (see Watch).
	WatchGaps atomic.Int64

	env *envtest.Environment
	dir string
	// removed holds the webhook configurations SetAdmission took away,
	// to put back.
	removedMutating   []admissionregistrationv1.MutatingWebhookConfiguration
	removedValidating []admissionregistrationv1.ValidatingWebhookConfiguration
}

// StartCluster starts a control plane keeping its files in dir. With
// webhooks, the API server sends admission requests to the operator, which
// must then serve them; without, the harness stamps the creator itself.
func StartCluster(dir string, webhooks bool) (*Cluster, error) {
	log, err := os.Create(filepath.Join(dir, "controlplane.log"))
	if err != nil {
		return nil, err
	}
	// Webhooks are always configured, for their serving certificates,
	// which the verification server uses too; without webhooks the
	// configurations are removed once the control plane is up.
	env, err := controlplane.New(controlplane.Options{Webhooks: true, Output: log})
	if err != nil {
		return nil, err
	}
	cfg, err := controlplane.StartGuarded(env)
	if err != nil {
		return nil, fmt.Errorf("starting the control plane (log: %s): %w", log.Name(), err)
	}
	c := &Cluster{Config: cfg, env: env, dir: dir, Webhooks: webhooks,
		CertDir:     env.WebhookInstallOptions.LocalServingCertDir,
		WebhookPort: env.WebhookInstallOptions.LocalServingPort}
	if err := c.init(); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) init() error {
	ctx := context.Background()
	scheme, err := controlplane.NewScheme()
	if err != nil {
		return err
	}
	// The harness creates thousands of objects as fast as it can; the
	// default client-side limit of 5 per second would measure itself.
	c.Config.QPS, c.Config.Burst = -1, 0
	if c.Admin, err = client.New(c.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	owner := rest.CopyConfig(c.Config)
	owner.Impersonate = rest.ImpersonationConfig{UserName: Owner}
	if c.AsOwner, err = client.New(owner, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	c.CAFile = filepath.Join(c.dir, "ca.crt")
	if err := os.WriteFile(c.CAFile, c.env.WebhookInstallOptions.LocalServingCAData, 0o600); err != nil {
		return err
	}
	admin, err := c.env.AddUser(envtest.User{Name: "harness-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	// The operator runs with this kubeconfig, so its user is the one the
	// status policy admits, as the operator's ServiceAccount is in a real
	// install; the harness's own clients are refused status writes.
	if err := controlplane.InstallStatusPolicy(ctx, admin.Config()); err != nil {
		return fmt.Errorf("installing the status policy: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	if !c.Webhooks {
		if err := c.Admin.DeleteAllOf(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{}); err != nil {
			return err
		}
		if err := c.Admin.DeleteAllOf(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{}); err != nil {
			return err
		}
	}
	// Owner may manage ApiTokens, as a team member with the editor role
	// would; everything else they do is decided by Team ownership.
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "harness-owner"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"auth.tokenwarden.io"},
			Resources: []string{"apitokens", "teams"},
			Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete"},
		}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "harness-owner"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: Owner}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := c.Admin.Create(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops the control plane.
func (c *Cluster) Stop() error { return c.env.Stop() }

// EnsureNamespace creates namespace name if it does not exist.
func (c *Cluster) EnsureNamespace(ctx context.Context, name string) error {
	err := c.Admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	return nil
}

// Admission says which of the operator's admission webhooks the API server
// calls for ApiTokens: the mutating one, which stamps the creator, and the
// validating ones (ApiTokens and Teams, one configuration).
type Admission struct{ Mutating, Validating bool }

func (a Admission) String() string {
	return fmt.Sprintf("mutating %v, validating %v", a.Mutating, a.Validating)
}

// probeTeam names no Team: the validating webhook refuses any token of it.
const probeTeam = "harness-admission-probe"

// AdmissionNow finds out which webhooks the API server calls, from a
// dry-run create of a token as Owner (webhooks are called for dry runs; the
// API server stores nothing and counts no write): the mutating webhook
// stamps the creator into what the API server answers, the validating
// webhook refuses the token (its Team does not exist), and names the
// missing creator among its reasons when the mutating webhook was not
// called.
func (c *Cluster) AdmissionNow(ctx context.Context) (Admission, error) {
	tok := &v1alpha1.ApiToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: probeTeam},
		Spec:       v1alpha1.ApiTokenSpec{Type: v1alpha1.TeamTokenType, Teams: []string{probeTeam}},
	}
	err := c.AsOwner.Create(ctx, tok, client.DryRunAll)
	switch {
	case err == nil:
		_, stamped := tok.Annotations[v1alpha1.CreatorAnnotation]
		return Admission{Mutating: stamped}, nil
	case apierrors.IsInvalid(err):
		return Admission{Validating: true, Mutating: !strings.Contains(err.Error(), "the mutating webhook sets it")}, nil
	}
	return Admission{}, err
}

// SetAdmission removes the webhook configurations the API server should not
// call and puts back those SetAdmission removed before that it should,
// then waits until AdmissionNow says the API server applies exactly want.
// The operator must be serving admission for the webhooks want keeps.
func (c *Cluster) SetAdmission(ctx context.Context, want Admission, timeout time.Duration) error {
	if want.Mutating {
		for _, cfg := range c.removedMutating {
			fresh := &admissionregistrationv1.MutatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: cfg.Name, Labels: cfg.Labels, Annotations: cfg.Annotations},
				Webhooks:   cfg.Webhooks,
			}
			if err := c.Admin.Create(ctx, fresh); err != nil {
				return err
			}
		}
		c.removedMutating = nil
	} else {
		list := &admissionregistrationv1.MutatingWebhookConfigurationList{}
		if err := c.Admin.List(ctx, list); err != nil {
			return err
		}
		for i := range list.Items {
			if err := c.Admin.Delete(ctx, &list.Items[i]); err != nil {
				return err
			}
			c.removedMutating = append(c.removedMutating, list.Items[i])
		}
	}
	if want.Validating {
		for _, cfg := range c.removedValidating {
			fresh := &admissionregistrationv1.ValidatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: cfg.Name, Labels: cfg.Labels, Annotations: cfg.Annotations},
				Webhooks:   cfg.Webhooks,
			}
			if err := c.Admin.Create(ctx, fresh); err != nil {
				return err
			}
		}
		c.removedValidating = nil
	} else {
		list := &admissionregistrationv1.ValidatingWebhookConfigurationList{}
		if err := c.Admin.List(ctx, list); err != nil {
			return err
		}
		for i := range list.Items {
			if err := c.Admin.Delete(ctx, &list.Items[i]); err != nil {
				return err
			}
			c.removedValidating = append(c.removedValidating, list.Items[i])
		}
	}
	// The API server applies configuration changes from a watch of its
	// own, a moment later.
	deadline := time.Now().Add(timeout)
	for {
		got, err := c.AdmissionNow(ctx)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("admission not %v after %v: %w", want, timeout, err)
			}
			return fmt.Errorf("admission not %v after %v: %v", want, timeout, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Writes are the API server's write requests so far (apiserver_request_total
// with a mutating verb), by "resource[/subresource]". They count every
// client, so a measurement subtracts what the harness itself wrote.
type Writes map[string]float64

// Total is the sum over the resources for which keep is true.
func (w Writes) Total(keep func(resource string) bool) float64 {
	var sum float64
	for resource, n := range w {
		if keep(resource) {
			sum += n
		}
	}
	return sum
}

// Minus is w - before, per resource.
func (w Writes) Minus(before Writes) Writes {
	diff := Writes{}
	for resource, n := range w {
		if d := n - before[resource]; d != 0 {
			diff[resource] = d
		}
	}
	return diff
}

var (
	requestTotal = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)
	label        = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// VirtualResources are written to but store nothing: reviews are questions
// to the API server, not writes.
var VirtualResources = map[string]bool{
	"subjectaccessreviews": true, "selfsubjectaccessreviews": true, "tokenreviews": true,
	"selfsubjectreviews": true, "localsubjectaccessreviews": true, "selfsubjectrulesreviews": true,
}

// metrics reads the API server's metrics.
func (c *Cluster) metrics(ctx context.Context) ([]byte, error) {
	clientset, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	return clientset.RESTClient().Get().AbsPath("/metrics").Do(ctx).Raw()
}

// WebhookCalls are the API server's calls to one admission webhook so far:
// how many, and how long they took in all, as the API server timed them
// (apiserver_admission_webhook_admission_duration_seconds, from before the
// request left to the answer decoded).
type WebhookCalls struct{ Count, Seconds float64 }

var webhookDuration = regexp.MustCompile(`^apiserver_admission_webhook_admission_duration_seconds_(sum|count)\{(.*)\} ([0-9.e+]+)$`)

// WebhookCallsNow reads the API server's admission webhook calls so far, by
// webhook name (e.g. mapitoken.auth.tokenwarden.io), over every operation
// and outcome, dry runs included.
func (c *Cluster) WebhookCallsNow(ctx context.Context) (map[string]WebhookCalls, error) {
	body, err := c.metrics(ctx)
	if err != nil {
		return nil, err
	}
	calls := map[string]WebhookCalls{}
	scanner := bufio.NewScanner(strings.NewReader(string(body)))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		m := webhookDuration.FindStringSubmatch(scanner.Text())
		if m == nil {
			continue
		}
		name := ""
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			if l[1] == "name" {
				name = l[2]
			}
		}
		n, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return nil, err
		}
		wc := calls[name]
		if m[1] == "sum" {
			wc.Seconds += n
		} else {
			wc.Count += n
		}
		calls[name] = wc
	}
	return calls, scanner.Err()
}

// WritesNow reads the API server's metrics.
func (c *Cluster) WritesNow(ctx context.Context) (Writes, error) {
	body, err := c.metrics(ctx)
	if err != nil {
		return nil, err
	}
	writes := Writes{}
	scanner := bufio.NewScanner(strings.NewReader(string(body)))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		m := requestTotal.FindStringSubmatch(scanner.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range label.FindAllStringSubmatch(m[1], -1) {
			labels[l[1]] = l[2]
		}
		switch labels["verb"] {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION":
		default:
			continue
		}
		if labels["dry_run"] != "" {
			continue
		}
		resource := labels["resource"]
		if labels["subresource"] != "" {
			resource += "/" + labels["subresource"]
		}
		n, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, err
		}
		writes[resource] += n
	}
	return writes, scanner.Err()
}
