package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	certutil "k8s.io/client-go/util/cert"

	"github.com/tokenwarden/tokenwarden/pkg/verifyclient"
	"github.com/tokenwarden/tokenwarden/test/harness"
)

// floodReport is what the clients of a flood saw.
type floodReport struct {
	// Sent counts the flooder's requests, Refused those answered 401 and
	// Limited those answered 429; LimitedBare counts the 429s without
	// Retry-After and RateLimit-* headers.
	Sent, Refused, Limited, LimitedBare int
	// Good counts the other client's requests with its valid token, GoodOK
	// those answered 200.
	Good, GoodOK int
	// Took is how long the flood lasted.
	Took time.Duration
}

// maxRefused is how many 401s a flood of took may get before its 429s with
// the default failure budget: 20 in a row and one more a second.
func (r floodReport) maxRefused() int {
	return 20 + int(r.Took/time.Second) + 1
}

// flood sends bad tokens to url from flooder, on two connections as fast as
// they are answered, while the other client presents good every 20 ms, for
// d.
func flood(url, good string, flooder, other *http.Client, d time.Duration) floodReport {
	GinkgoHelper()
	var (
		mu sync.Mutex
		r  floodReport
		wg sync.WaitGroup
	)
	stop := make(chan struct{})
	start := time.Now()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, header, _ := send(flooder, url, "Bearer junk")
				mu.Lock()
				r.Sent++
				switch code {
				case http.StatusUnauthorized:
					r.Refused++
				case http.StatusTooManyRequests:
					r.Limited++
					if header.Get("Retry-After") == "" || header.Get("RateLimit-Limit") == "" ||
						header.Get("RateLimit-Remaining") != "0" || header.Get("RateLimit-Reset") == "" {
						r.LimitedBare++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		code, _, _ := send(other, url, "Bearer "+good)
		mu.Lock()
		r.Good++
		if code == http.StatusOK {
			r.GoodOK++
		}
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
	r.Took = time.Since(start)
	return r
}

// send is GET url with an Authorization header; it reports the status and
// the headers, 0 when there was no answer.
func send(c *http.Client, url, authorization string) (int, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", authorization)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// Issue #13: behind a reverse proxy, or a service verifying through
// pkg/verifyclient, every client reaches the verifier from one address. One
// anonymous caller sending junk must not make a valid token from any
// client, that address's included, answer 429; the caller itself meets
// 429s with their headers. The operator runs against a control plane of
// its own, with the loopback proxy trusted to name its clients.
var _ = Describe("Verification behind a reverse proxy", Ordered, func() {
	const ns = "proxy"
	var (
		cluster *harness.Cluster
		op      *harness.Operator
		good    string
		user    string
		// caFile is the CA of the verification server's certificate.
		caFile string
		// flooder and other are two clients of the proxy, on addresses of
		// their own.
		flooder, other *http.Client
	)

	BeforeAll(func() {
		ctx := context.Background()
		var err error
		cluster, err = harness.StartCluster(GinkgoT().TempDir(), false)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(cluster.Stop)
		Expect(cluster.EnsureNamespace(ctx, ns)).To(Succeed())
		Expect(cluster.Admin.Create(ctx, harness.Team(ns, []string{ns}))).To(Succeed())
		// The verification server gets a self-signed certificate, as in
		// local mode: the harness's CA file holds envtest's serving
		// certificate rather than its CA, which Go accepts as a trust
		// anchor and OpenSSL, so nginx, does not.
		certDir := GinkgoT().TempDir()
		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.ParseIP("127.0.0.1")}, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(certDir, "tls.crt"), certPEM, 0o600)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(certDir, "tls.key"), keyPEM, 0o600)).To(Succeed())
		caFile = filepath.Join(certDir, "tls.crt")
		op, err = cluster.StartOperator(binary, harness.OperatorOptions{Name: "proxy", Args: []string{"--verify-cert-dir", certDir}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(op.Stop)
		_, err = op.WaitReady(ctx, time.Minute)
		Expect(err).NotTo(HaveOccurred())
		names, err := cluster.CreateTokens(ctx, ns, "svc", ns, 1, 1)
		Expect(err).NotTo(HaveOccurred())
		_, _, err = cluster.WaitSettled(ctx, ns, 30*time.Second, nil)
		Expect(err).NotTo(HaveOccurred())
		values, err := cluster.WaitValues(ctx, ns, names, 10*time.Second)
		Expect(err).NotTo(HaveOccurred())
		good = values[names[0]]
		issued.add(good, "Secret proxy/"+names[0]+" of the reverse-proxy specs")
		user = "tokenwarden:" + ns + ":" + names[0] + ":"
		flooder, other = clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	})

	It("keeps a valid token verifying through nginx while another client floods it with junk", func() {
		nginx := startNginx(op.VerifyURL+"/verify", caFile)
		resp, body := get(other, nginx, map[string]string{"Authorization": "Bearer " + good})
		Expect(resp.StatusCode).To(Equal(http.StatusOK), body)
		Expect(body).To(HavePrefix("hello " + user))

		// The case: a client on the flooder's own address (behind
		// a proxy, or NAT, that is everybody) presents a valid token while
		// the flood goes on.
		r := flood(nginx, good, flooder, clientFrom("127.0.0.2"), 3*time.Second)
		GinkgoWriter.Printf("through nginx: %+v\n", r)
		Expect(r.Good).To(BeNumerically(">", 50))
		Expect(r.GoodOK).To(Equal(r.Good), "every valid token verified during the flood")
		Expect(r.Limited).To(BeNumerically(">", 0), "the flooder met 429s")
		Expect(r.LimitedBare).To(BeZero(), "every 429 carried Retry-After and RateLimit-*")
		Expect(r.Refused).To(BeNumerically("<=", r.maxRefused()))

		// nginx names its clients: another client's own typo is refused as
		// what it is, while the flooder's junk still meets 429.
		resp, _ = get(other, nginx, map[string]string{"Authorization": "Bearer typo"})
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
		// The limiter refills as time passes, so on a slow machine the
		// flooder's next attempt may be the one it lets through; the one
		// after is not.
		Eventually(func() int {
			resp, _ := get(flooder, nginx, map[string]string{"Authorization": "Bearer junk"})
			return resp.StatusCode
		}, 5*time.Second, time.Millisecond).Should(Equal(http.StatusTooManyRequests))
	})

	It("does the same for a service using pkg/verifyclient's middleware", func() {
		ca, err := os.ReadFile(caFile)
		Expect(err).NotTo(HaveOccurred())
		// No cache, so that every request reaches the verifier.
		verifier := verifyclient.New(op.VerifyURL, verifyclient.WithCA(ca), verifyclient.WithCacheTTL(-1))
		service := httptest.NewServer(verifyclient.Middleware(verifier, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := verifyclient.FromContext(r.Context())
			_, _ = io.WriteString(w, "hello "+id.User)
		})))
		DeferCleanup(service.Close)
		// The flooder's address spent its budget in the spec before; a new
		// one starts afresh.
		flooder := clientFrom("127.0.0.4")

		r := flood(service.URL, good, flooder, other, 3*time.Second)
		GinkgoWriter.Printf("through a verifyclient service: %+v\n", r)
		Expect(r.Good).To(BeNumerically(">", 50))
		Expect(r.GoodOK).To(Equal(r.Good), "every valid token verified during the flood")
		Expect(r.Limited).To(BeNumerically(">", 0), "the flooder met 429s")
		Expect(r.Refused).To(BeNumerically("<=", r.maxRefused()))

		resp, _ := get(other, service.URL, map[string]string{"Authorization": "Bearer typo"})
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized), "the middleware named the other client")
		resp, body := get(flooder, service.URL, map[string]string{"Authorization": "Bearer " + good})
		Expect(resp.StatusCode).To(Equal(http.StatusOK), body)
		Expect(body).To(HavePrefix("hello " + user))
	})
})
