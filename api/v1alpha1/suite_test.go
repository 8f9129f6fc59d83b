package v1alpha1_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

// These specs run against a real kube-apiserver and etcd with the generated
// CRDs installed: they prove that the OpenAPI and CEL rules written as
// markers refuse bad objects, which no unit test of the Go types can.

var (
	testEnv *envtest.Environment
	// cfg and k8sClient are the control plane's admin, which is also the
	// identity its status policy names as the operator's.
	cfg       *rest.Config
	k8sClient client.Client
	ctx       context.Context
)

func TestAPIValidation(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "API validation suite")
}

var _ = BeforeSuite(func() {
	ctx = context.Background()
	var err error
	testEnv, cfg, k8sClient, err = controlplane.Start(controlplane.Options{})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
