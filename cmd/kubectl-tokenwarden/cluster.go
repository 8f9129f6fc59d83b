package main

import (
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// kubeFlags are the flags that pick a cluster, a user and a namespace, with
// kubectl's meaning.
type kubeFlags struct {
	kubeconfig string
	context    string
	// namespace is -n; empty means the context's namespace.
	namespace string
}

// cluster is a connection to an API server as the kubeconfig's user.
type cluster struct {
	client client.Client
	// namespace is -n if given, else the context's namespace, else
	// "default", as kubectl resolves it.
	namespace string
	// config reaches the API server directly, for the service proxy.
	config *rest.Config
}

// newCluster loads the kubeconfig as kubectl does ($KUBECONFIG,
// ~/.kube/config, in-cluster) and connects as its user. API warnings, such
// as deprecations, go to warnings.
func newCluster(f kubeFlags, warnings io.Writer) (*cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	overrides.Context.Namespace = f.namespace
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)

	config, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	namespace, _, err := loader.Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	config.UserAgent = "kubectl-tokenwarden"
	// Otherwise controller-runtime sends warnings to its logger, which a
	// command-line tool never sets up.
	config.WarningHandler = rest.NewWarningWriter(warnings, rest.WarningWriterOptions{Deduplicate: true})

	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	return &cluster{client: c, namespace: namespace, config: config}, nil
}
