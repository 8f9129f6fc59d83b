// Package devenv is Tokenwarden's local mode: a real kube-apiserver, etcd and
// kube-controller-manager on this machine, the CRDs installed and an admin
// kubeconfig written, so the operator can run against it without any
// cluster, and namespace deletion and garbage collection happen as in one.
//
// State lives in one directory (bin/dev by default): etcd's data survives a
// restart, certificates and kubeconfigs are made anew on every start.
package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/tokenwarden/tokenwarden/config/rbac"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

// AdminKubeconfig is the name, inside the state directory, of the kubeconfig
// of a cluster admin (group system:masters, so it may impersonate anyone).
const AdminKubeconfig = "admin.kubeconfig"

// Options configure the local mode.
type Options struct {
	// StateDir holds etcd's data, the API server's certificates, the
	// kubeconfigs and the control plane's log.
	StateDir string
	// AssetsDir holds kube-apiserver, etcd, kube-controller-manager and
	// kubectl; see controlplane.Options.
	AssetsDir string
}

// Env is a running local control plane.
type Env struct {
	// Config is a cluster-admin client configuration for the operator; the
	// status policy admits status writes from its user only.
	Config *rest.Config
	// AdminKubeconfig is the path of the admin kubeconfig.
	AdminKubeconfig string
	// Kubectl is the path of the kubectl built with the control plane.
	Kubectl string
	// APIServerURL is where kube-apiserver listens.
	APIServerURL string
	// Webhook is where the API server expects the admission webhooks: the
	// operator serves them on that host and port with the certificates in
	// that directory.
	Webhook WebhookServing
	// Verify is where the operator serves verification, which
	// kube-apiserver asks through its webhook token authenticator.
	Verify VerifyServing
	// MetricsAddress is where the operator serves metrics.
	MetricsAddress string
	// EndpointsFile is bin/dev/endpoints.env.
	EndpointsFile string
	// Reaped counts control plane processes of an earlier, killed run that
	// Start stopped.
	Reaped int

	env *envtest.Environment
	log *os.File
}

// WebhookServing is where a webhook server listens and its certificates.
type WebhookServing struct {
	Host    string
	Port    int
	CertDir string
}

// VerifyServing is where the verification server listens, its serving
// certificate, and the CA that clients trust.
type VerifyServing struct {
	Address string
	CertDir string
	CAFile  string
	URL     string
}

// Start stops what an earlier, killed run left behind in opts.StateDir, then
// starts etcd, kube-apiserver and kube-controller-manager, installs the CRDs
// and the status policy (naming Config's user) and writes the admin
// kubeconfig.
func Start(opts Options) (*Env, error) {
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(stateDir, "apiserver")
	// Certificates are made per start; envtest would reuse stale ones.
	if err := os.RemoveAll(certDir); err != nil {
		return nil, err
	}
	for _, dir := range []string{stateDir, certDir, filepath.Join(stateDir, "etcd")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	reaped := reapOrphans(stateDir)
	verifyServing, metricsAddress, apiserverArgs, err := prepareVerification(stateDir)
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(stateDir, "controlplane.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	// The same start as the envtest suites': cfg is the operator's
	// configuration, and the status policy admits status writes from its
	// user only, so kubectl with the admin kubeconfig is refused them as a
	// person would be in a real install.
	env, cfg, _, err := controlplane.Start(controlplane.Options{
		AssetsDir:     opts.AssetsDir,
		EtcdDataDir:   filepath.Join(stateDir, "etcd"),
		CertDir:       certDir,
		Output:        logFile,
		Webhooks:      true,
		APIServerArgs: apiserverArgs,
		// So that `kubectl delete namespace` finishes and an ApiToken's
		// Secret goes with it, as in a cluster.
		ControllerManager: true,
	})
	if env == nil {
		// Nothing started (no binaries, say): the log has nothing to add.
		_ = logFile.Close()
		return nil, err
	}
	if err != nil {
		_ = env.Stop()
		_ = logFile.Close()
		return nil, fmt.Errorf("starting the local control plane (its log: %s): %w", logFile.Name(), err)
	}
	e := &Env{Config: cfg, env: env, log: logFile, APIServerURL: cfg.Host, Reaped: reaped,
		Kubectl:        filepath.Join(env.BinaryAssetsDirectory, "kubectl"),
		Verify:         verifyServing,
		MetricsAddress: metricsAddress,
		EndpointsFile:  filepath.Join(stateDir, "endpoints.env"),
		Webhook: WebhookServing{
			Host:    env.WebhookInstallOptions.LocalServingHost,
			Port:    env.WebhookInstallOptions.LocalServingPort,
			CertDir: env.WebhookInstallOptions.LocalServingCertDir,
		}}

	admin, err := env.AddUser(envtest.User{Name: "tokenwarden-dev-admin", Groups: []string{"system:masters"}}, nil)
	if err == nil {
		e.AdminKubeconfig = filepath.Join(stateDir, AdminKubeconfig)
		err = writeKubeconfig(admin, e.AdminKubeconfig)
	}
	if err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	if err := installRBAC(context.Background(), cfg); err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("installing the Tokenwarden roles: %w", err)
	}
	endpoints := fmt.Sprintf("TOKENWARDEN_VERIFY_URL=%s\nTOKENWARDEN_METRICS_URL=http://%s/metrics\nTOKENWARDEN_CA_FILE=%s\n",
		verifyServing.URL, metricsAddress, verifyServing.CAFile)
	if err := os.WriteFile(e.EndpointsFile, []byte(endpoints), 0o600); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

// prepareVerification picks free loopback ports for verification and
// metrics, makes the verification server's certificate (its CA goes to
// ca.crt), and writes the kubeconfig-format file that makes kube-apiserver
// authenticate bearer tokens through TokenReview on that server. Its
// answers are cached for one second, so a revoked token stops working with
// kubectl within a second.
func prepareVerification(stateDir string) (VerifyServing, string, map[string][]string, error) {
	ports, err := controlplane.FreePorts(2)
	if err != nil {
		return VerifyServing{}, "", nil, err
	}
	verifyPort, metricsPort := ports[0], ports[1]
	serving := VerifyServing{
		Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(verifyPort)),
		CertDir: filepath.Join(stateDir, "verify"),
		CAFile:  filepath.Join(stateDir, "ca.crt"),
	}
	serving.URL = "https://" + serving.Address + "/verify"
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		return VerifyServing{}, "", nil, err
	}
	if err := os.MkdirAll(serving.CertDir, 0o700); err != nil {
		return VerifyServing{}, "", nil, err
	}
	files := map[string][]byte{
		filepath.Join(serving.CertDir, "tls.crt"): certPEM,
		filepath.Join(serving.CertDir, "tls.key"): keyPEM,
		serving.CAFile: certPEM,
	}
	webhookConfig := filepath.Join(stateDir, "authn-webhook.kubeconfig")
	files[webhookConfig] = []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: tokenwarden
  cluster:
    certificate-authority: %s
    server: https://%s/tokenreview
users:
- name: kube-apiserver
contexts:
- name: tokenwarden
  context: {cluster: tokenwarden, user: kube-apiserver}
current-context: tokenwarden
`, serving.CAFile, serving.Address))
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return VerifyServing{}, "", nil, err
		}
	}
	args := map[string][]string{
		"authentication-token-webhook-config-file": {webhookConfig},
		"authentication-token-webhook-version":     {"v1"},
		"authentication-token-webhook-cache-ttl":   {"1s"},
	}
	return serving, net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)), args, nil
}

// DevEditorBinding binds tokenwarden-editor to every authenticated user in
// the local mode only, so that `kubectl --as <anyone>` reaches the admission
// webhook and shows its rules rather than stopping at RBAC.
const DevEditorBinding = "tokenwarden-dev-editor-everyone"

// installRBAC creates or updates the ClusterRoles of config/rbac, prefixed
// as kustomize prefixes them, and the local mode's editor binding.
func installRBAC(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	files, err := fs.Glob(rbac.Roles, "*.yaml")
	if err != nil {
		return err
	}
	objects := make([]client.Object, 0, len(files)+1)
	for _, name := range files {
		data, err := rbac.Roles.ReadFile(name)
		if err != nil {
			return err
		}
		role := &rbacv1.ClusterRole{}
		if err := yaml.UnmarshalStrict(data, role); err != nil {
			return fmt.Errorf("parsing %s: %w", name, err)
		}
		role.Name = "tokenwarden-" + role.Name
		objects = append(objects, role)
	}
	objects = append(objects, &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: DevEditorBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "tokenwarden-editor"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}},
	})
	for _, obj := range objects {
		obj.SetManagedFields(nil)
		//nolint:staticcheck // client.Apply with an unstructured-free typed object is the simplest idempotent create-or-update here.
		if err := c.Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner("tokenwarden-dev")); err != nil {
			return fmt.Errorf("applying %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

// Stop stops kube-apiserver, kube-controller-manager and etcd and waits for
// them to exit.
func (e *Env) Stop() error {
	err := e.env.Stop()
	return errors.Join(err, e.log.Close())
}

func writeKubeconfig(user *envtest.AuthenticatedUser, path string) error {
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	// envtest names its context after itself; a neutral name reads better in
	// `kubectl config current-context`.
	data = bytes.ReplaceAll(data, []byte("envtest"), []byte("tokenwarden-dev"))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// reapOrphans ends control plane processes of an earlier run that was killed
// before it could stop them: they hold etcd's data directory locked, and an
// orphaned kube-controller-manager retries a gone API server for ever. They
// are recognised by their command line naming stateDir.
func reapOrphans(stateDir string) int {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(procs) == 0 {
		return 0 // not Linux: nothing to reap this way
	}
	var orphans []int
	for _, cmdline := range procs {
		data, err := os.ReadFile(cmdline)
		if err != nil || !bytes.Contains(data, []byte(stateDir+string(filepath.Separator))) {
			continue
		}
		exe := filepath.Base(string(bytes.SplitN(data, []byte{0}, 2)[0]))
		if exe != "etcd" && exe != "kube-apiserver" && exe != "kube-controller-manager" {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(cmdline)))
		if err == nil && pid != os.Getpid() {
			orphans = append(orphans, pid)
		}
	}
	for _, pid := range orphans {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range orphans {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return len(orphans)
}
