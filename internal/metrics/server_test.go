package metrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/yaml"

	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

func TestServerOptionsPlain(t *testing.T) {
	g := NewWithT(t)
	opts := ServerOptions(Serving{BindAddress: "127.0.0.1:0", CertPath: "/ignored"})
	g.Expect(opts.SecureServing).To(BeFalse())
	g.Expect(opts.FilterProvider).To(BeNil(), "plain HTTP is for loopback, where the harness reads metrics without a token")
}

// TestSecureServing starts a manager on a real API server with the metrics
// options main.go uses by default, and scrapes it as Prometheus would: only
// a ServiceAccount token bound to config/rbac's metrics-reader role is
// served, over TLS with the certificate from CertPath.
func TestSecureServing(t *testing.T) {
	g := NewWithT(t)
	env, cfg, c, err := controlplane.Start(controlplane.Options{})
	if env != nil {
		t.Cleanup(func() {
			if err := env.Stop(); err != nil {
				t.Logf("stopping the control plane: %v", err)
			}
		})
	}
	g.Expect(err).NotTo(HaveOccurred())
	ctx := t.Context()

	// The role the install ships for scrapers, as a cluster gets it.
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "metrics_reader_role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	reader := &rbacv1.ClusterRole{}
	g.Expect(yaml.Unmarshal(data, reader)).To(Succeed())
	g.Expect(c.Create(ctx, reader)).To(Succeed())
	clientset, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	token := func(name string) string {
		g.Expect(c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})).To(Succeed())
		tr, err := clientset.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		return tr.Status.Token
	}
	prometheus, stranger := token("prometheus"), token("stranger")
	g.Expect(c.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "prometheus", Namespace: "default"}},
	})).To(Succeed())

	// The serving certificate, as cert-manager's Secret would be mounted.
	certDir := t.TempDir()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(filepath.Join(certDir, "tls.crt"), certPEM, 0o600)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(certDir, "tls.key"), keyPEM, 0o600)).To(Succeed())

	addr := freeAddress(t)
	scheme, err := controlplane.NewScheme()
	g.Expect(err).NotTo(HaveOccurred())
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: ServerOptions(Serving{BindAddress: addr, Secure: true, CertPath: certDir}),
	})
	g.Expect(err).NotTo(HaveOccurred())
	Register(mgr.GetClient())
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		stop()
		g.Expect(<-done).To(Succeed())
	})

	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM(certPEM)).To(BeTrue())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	scrape := func(token string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	// Listening, and the certificate verifies: it is CertPath's, not the
	// self-signed fallback.
	g.Eventually(func() error { _, _, err := scrape(""); return err }).WithTimeout(30 * time.Second).Should(Succeed())

	code, _, err := scrape("")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusUnauthorized), "a scrape without a token")
	code, _, err = scrape(stranger)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusForbidden), "a ServiceAccount not bound to metrics-reader")
	code, body, err := scrape(prometheus)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect(body).To(ContainSubstring("tokenwarden_token_invalidations_total{"), "the operator's series, on the registry the endpoint serves")

	// A plain HTTP scrape of the HTTPS endpoint gets nothing.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusBadRequest), "Go's TLS server answers plain HTTP with 400")
	}
}

// freeAddress returns a loopback address with a port free a moment ago:
// controller-runtime's metrics server does not tell the port it bound.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}
