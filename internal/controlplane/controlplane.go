// Package controlplane starts a real kube-apiserver and etcd, built by
// hack/controlplane.sh, with Tokenwarden's CRDs and status policy installed,
// and on request kube-controller-manager, so namespace deletion and garbage
// collection happen as in a real cluster. The envtest suites and the local
// mode (--dev) both use it, so tests and newcomers run against the same
// control plane.
package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/config/crd"
	webhookconfig "github.com/tokenwarden/tokenwarden/config/webhook"
)

// AssetsEnv is the variable envtest reads the binaries' directory from.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Options configure a control plane.
type Options struct {
	// AssetsDir holds kube-apiserver, etcd and kubectl, and
	// kube-controller-manager when ControllerManager is set. Empty means
	// $KUBEBUILDER_ASSETS, else the newest complete build under
	// <repository>/bin/k8s.
	AssetsDir string

	// EtcdDataDir keeps etcd's data across runs when set; empty means a
	// temporary directory removed on Stop.
	EtcdDataDir string

	// CertDir is where the API server's certificates go; empty means a
	// temporary directory. It must not hold certificates of an earlier run.
	CertDir string

	// APIServerArgs are set on kube-apiserver in addition to envtest's.
	APIServerArgs map[string][]string

	// Output, when set, receives the control plane processes' output.
	Output io.Writer

	// Webhooks registers the admission webhooks of config/webhook with the
	// API server, pointed at a local webhook server whose host, port and
	// serving certificates the returned environment's
	// WebhookInstallOptions hold.
	Webhooks bool

	// ControllerManager makes Start run kube-controller-manager once the
	// API server is up (see StartControllerManager): namespaces are then
	// deleted, owned objects garbage collected and ServiceAccounts made,
	// which bare envtest never does.
	ControllerManager bool
}

// New returns an envtest environment, not yet started, with the CRDs of
// config/crd/bases.
func New(opts Options) (*envtest.Environment, error) {
	assets, err := ResolveAssetsDir(opts.AssetsDir)
	if err != nil {
		return nil, err
	}
	if opts.ControllerManager {
		// Checked before anything starts, rather than once etcd and
		// kube-apiserver are up.
		if err := requireBinaries(assets, "kube-controller-manager"); err != nil {
			return nil, err
		}
	}
	crds, err := CRDs()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDs:                  crds,
		ErrorIfCRDPathMissing: true,
	}
	if opts.Webhooks {
		mutating, validating, err := WebhookConfigurations()
		if err != nil {
			return nil, err
		}
		env.WebhookInstallOptions = envtest.WebhookInstallOptions{MutatingWebhooks: mutating, ValidatingWebhooks: validating}
	}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: opts.EtcdDataDir, Out: opts.Output, Err: opts.Output}
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: opts.CertDir, Out: opts.Output, Err: opts.Output}
	names := make([]string, 0, len(opts.APIServerArgs))
	for name := range opts.APIServerArgs {
		names = append(names, name)
	}
	sort.Strings(names)
	if opts.ControllerManager {
		// kube-controller-manager stops after kube-apiserver (envtest has
		// no hook before), and its open watches would hold kube-apiserver's
		// shutdown for a minute, past envtest's stop timeout: with this
		// kube-apiserver ends them as it stops.
		env.ControlPlane.APIServer.Configure().Set(watchGraceFlag, "1s")
	}
	for _, name := range names {
		env.ControlPlane.APIServer.Configure().Set(name, opts.APIServerArgs[name]...)
	}
	return env, nil
}

// ResolveAssetsDir returns dir if set, else $KUBEBUILDER_ASSETS, else the
// newest complete build of hack/controlplane.sh, with an error that says how
// to build one when there is none. It requires kube-apiserver, etcd and
// kubectl only: kube-controller-manager is required where it is asked for
// (Options.ControllerManager), so a directory of envtest's own binaries
// still serves the suites that do without it.
func ResolveAssetsDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(AssetsEnv)
	}
	if dir == "" {
		stamps, _ := filepath.Glob(filepath.Join(repositoryRoot(), "bin", "k8s", "*", ".stamp"))
		if len(stamps) == 0 {
			return "", errors.New("no control plane binaries: run `make controlplane` (or `make test`, which builds them), or set " + AssetsEnv)
		}
		sort.Strings(stamps)
		dir = filepath.Dir(stamps[len(stamps)-1])
	}
	if err := requireBinaries(dir, "kube-apiserver", "etcd", "kubectl"); err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}

// requireBinaries fails, saying how to build them, when dir lacks one of
// the binaries.
func requireBinaries(dir string, binaries ...string) error {
	for _, bin := range binaries {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return fmt.Errorf("control plane directory %s lacks %s: run `make controlplane`: %w", dir, bin, err)
		}
	}
	return nil
}

// CRDs parses the embedded CRD manifests.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := fs.Glob(crd.Bases, "bases/*.yaml")
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, name := range files {
		data, err := crd.Bases.ReadFile(name)
		if err != nil {
			return nil, err
		}
		err = eachDocument(data, func(doc []byte) error {
			obj := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				return fmt.Errorf("parsing %s: %w", name, err)
			}
			crds = append(crds, obj)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	if len(crds) == 0 {
		return nil, errors.New("no CRDs embedded: run `make manifests`")
	}
	return crds, nil
}

// WebhookConfigurations parses the embedded webhook configurations, with
// the matchConditions kustomize patches in.
func WebhookConfigurations() ([]*admissionregistrationv1.MutatingWebhookConfiguration, []*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	mutating, validating, err := parseWebhookConfigurations(webhookconfig.Manifests)
	if err != nil {
		return nil, nil, err
	}
	patchMutating, patchValidating, err := parseWebhookConfigurations(webhookconfig.MatchConditions)
	if err != nil {
		return nil, nil, fmt.Errorf("config/webhook/match_conditions.yaml: %w", err)
	}
	conditions := map[string][]admissionregistrationv1.MatchCondition{}
	for _, c := range patchMutating {
		for _, w := range c.Webhooks {
			conditions[w.Name] = w.MatchConditions
		}
	}
	for _, c := range patchValidating {
		for _, w := range c.Webhooks {
			conditions[w.Name] = w.MatchConditions
		}
	}
	for _, c := range mutating {
		for i := range c.Webhooks {
			if mc, ok := conditions[c.Webhooks[i].Name]; ok {
				c.Webhooks[i].MatchConditions = mc
				delete(conditions, c.Webhooks[i].Name)
			}
		}
	}
	for _, c := range validating {
		for i := range c.Webhooks {
			if mc, ok := conditions[c.Webhooks[i].Name]; ok {
				c.Webhooks[i].MatchConditions = mc
				delete(conditions, c.Webhooks[i].Name)
			}
		}
	}
	for name := range conditions {
		return nil, nil, fmt.Errorf("config/webhook/match_conditions.yaml names webhook %q, which manifests.yaml does not have", name)
	}
	return mutating, validating, nil
}

// parseWebhookConfigurations parses a YAML stream of webhook
// configurations.
func parseWebhookConfigurations(data []byte) ([]*admissionregistrationv1.MutatingWebhookConfiguration, []*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	var (
		mutating   []*admissionregistrationv1.MutatingWebhookConfiguration
		validating []*admissionregistrationv1.ValidatingWebhookConfiguration
	)
	err := eachDocument(data, func(doc []byte) error {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return err
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			obj := &admissionregistrationv1.MutatingWebhookConfiguration{}
			mutating = append(mutating, obj)
			return yaml.UnmarshalStrict(doc, obj)
		case "ValidatingWebhookConfiguration":
			obj := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			validating = append(validating, obj)
			return yaml.UnmarshalStrict(doc, obj)
		}
		return fmt.Errorf("unexpected kind %q among webhook configurations", meta.Kind)
	})
	return mutating, validating, err
}

// eachDocument calls fn with each non-empty document of a YAML stream.
func eachDocument(data []byte, fn func([]byte) error) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---")))) == 0 {
			continue
		}
		if err := fn(doc); err != nil {
			return err
		}
	}
}

// repositoryRoot is the checkout this package was compiled from; tests run
// in their package's directory, so a relative path would not do.
func repositoryRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// NewScheme holds the Kubernetes built-in kinds and Tokenwarden's.
func NewScheme() (*k8sruntime.Scheme, error) {
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, v1alpha1.AddToScheme(scheme)
}

// Start builds and starts a control plane and returns it with its admin
// configuration and a client for NewScheme's kinds: the opening of every
// envtest suite, and of the local mode. The admin configuration is the one
// to run the operator with: config/policy's ValidatingAdmissionPolicy is
// installed naming its user as the only one who may write ApiToken and Team
// status, so any other user, system:masters included, is refused as in a
// real install. With opts.ControllerManager, kube-controller-manager runs
// too, and env.Stop stops it.
func Start(opts Options) (*envtest.Environment, *rest.Config, client.Client, error) {
	env, err := New(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := StartGuarded(env)
	if err != nil {
		return env, nil, nil, err
	}
	if opts.ControllerManager {
		if err := StartControllerManager(env, opts.Output); err != nil {
			return env, cfg, nil, err
		}
	}
	if err := InstallStatusPolicy(context.Background(), cfg); err != nil {
		return env, cfg, nil, fmt.Errorf("installing the status policy: %w", err)
	}
	scheme, err := NewScheme()
	if err != nil {
		return env, cfg, nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return env, cfg, c, err
}
