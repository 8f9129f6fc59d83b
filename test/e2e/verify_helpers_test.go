package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

// endpoints reads bin/dev/endpoints.env of a local mode.
func endpoints(stateDir string) map[string]string {
	GinkgoHelper()
	f, err := os.Open(filepath.Join(stateDir, "endpoints.env"))
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	out := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if k, v, ok := strings.Cut(scanner.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

// verifyClient trusts the local mode's CA.
func verifyClient(caFile string) *http.Client {
	GinkgoHelper()
	pem, err := os.ReadFile(caFile)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(pem)).To(BeTrue())
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// get sends GET url with headers and returns the response and its body.
func get(c *http.Client, url string, headers map[string]string) (*http.Response, string) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp, string(body)
}

func freePort() int {
	GinkgoHelper()
	ports, err := controlplane.FreePorts(1)
	Expect(err).NotTo(HaveOccurred())
	return ports[0]
}

// nginx runs a real nginx with auth_request in front of a tiny backend that
// echoes the identity headers nginx passes on. It returns nginx's URL.
// nginx names the client it heard from in X-Real-IP and X-Forwarded-For,
// which the verifier believes when nginx's address is among its
// --verify-trusted-proxies. nginx's error log goes to logsDir, where the
// leak scan reads it.
func startNginx(verifyURL, caFile string) string {
	GinkgoHelper()
	path, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") != "" {
			Fail("nginx is missing: `make test` installs it with hack/ensure-nginx.sh")
		}
		Skip("nginx is not installed (hack/ensure-nginx.sh installs it as root)")
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "hello %s", r.Header.Get("X-Tokenwarden-User")) //nolint:gosec // a test backend echoing what nginx passed on
	}))
	DeferCleanup(backend.Close)

	dir := GinkgoT().TempDir()
	port := freePort()
	conf := fmt.Sprintf(`
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[6]s info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s;
  proxy_temp_path %[1]s;
  server {
    listen 127.0.0.1:%[2]d;
    location / {
      auth_request /_verify;
      auth_request_set $tw_user $upstream_http_x_tokenwarden_user;
      auth_request_set $tw_status $upstream_status;
      auth_request_set $tw_retry_after $upstream_http_retry_after;
      auth_request_set $tw_limit $upstream_http_ratelimit_limit;
      auth_request_set $tw_remaining $upstream_http_ratelimit_remaining;
      auth_request_set $tw_reset $upstream_http_ratelimit_reset;
      proxy_set_header X-Tokenwarden-User $tw_user;
      proxy_pass %[3]s;
      # auth_request passes 401 and 403 on and turns anything else into
      # 500; a 429 from Tokenwarden is restored here with its headers.
      error_page 500 = @auth_error;
    }
    location = /_verify {
      internal;
      proxy_pass %[4]s;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Authorization $http_authorization;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_ssl_trusted_certificate %[5]s;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
    }
    location @auth_error {
      if ($tw_status = 429) {
        add_header Retry-After $tw_retry_after always;
        add_header RateLimit-Limit $tw_limit always;
        add_header RateLimit-Remaining $tw_remaining always;
        add_header RateLimit-Reset $tw_reset always;
        return 429;
      }
      return 500;
    }
  }
}
`, dir, port, backend.URL, verifyURL, caFile, filepath.Join(logsDir, fmt.Sprintf("nginx-%d.log", port)))
	confFile := filepath.Join(dir, "nginx.conf")
	Expect(os.WriteFile(confFile, []byte(conf), 0o600)).To(Succeed())
	session, err := gexec.Start(exec.Command(path, "-p", dir, "-c", confFile), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		session.Terminate()
		Eventually(session, 10*time.Second).Should(gexec.Exit())
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	Eventually(func() error {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_ = conn.Close()
		}
		return err
	}, 10*time.Second).Should(Succeed())
	return url
}

// clientFrom is an HTTP client whose connections come from the loopback
// address addr (any of 127.0.0.0/8), so that a proxy on 127.0.0.1 tells
// the test's clients apart as it would tell real ones.
func clientFrom(addr string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
}
