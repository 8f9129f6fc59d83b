package install

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// injectCAAnnotation is cert-manager's cainjector annotation: the value
// names the Certificate, as <namespace>/<name>, whose CA goes into the
// object's caBundle fields.
const injectCAAnnotation = "cert-manager.io/inject-ca-from"

// testCA plays cert-manager's part in the rehearsal: it issues every
// Certificate the install renders into the Secret that Certificate names,
// and injects the CA into the webhook configurations as cainjector does.
// One CA signs them all; cert-manager's self-signed Issuer would make each
// certificate its own CA, which changes nothing for the clients, who trust
// ca.crt either way.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA() (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tokenwarden rehearsal CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue returns a serving certificate and key for dnsNames. It adds
// 127.0.0.1, because the rehearsal's clients reach the Services at loopback
// addresses: the one deviation in what the certificates hold.
func (ca *testCA) issue(dnsNames []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: firstOr(dnsNames, "tokenwarden")},
		DNSNames:     dnsNames,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func firstOr(list []string, fallback string) string {
	if len(list) > 0 {
		return list[0]
	}
	return fallback
}

var certificateGVK = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}

// issueCertificates writes, for every cert-manager Certificate in the
// cluster, the kubernetes.io/tls Secret cert-manager would write, and
// returns how many it issued.
func (ca *testCA) issueCertificates(ctx context.Context, c client.Client) (int, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(certificateGVK.GroupVersion().WithKind("CertificateList"))
	if err := c.List(ctx, list); err != nil {
		return 0, err
	}
	for _, cert := range list.Items {
		secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
		dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		if secretName == "" {
			return 0, fmt.Errorf("certificate %s/%s names no secretName", cert.GetNamespace(), cert.GetName())
		}
		crt, key, err := ca.issue(dnsNames)
		if err != nil {
			return 0, err
		}
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: cert.GetNamespace(),
				Annotations: map[string]string{"cert-manager.io/certificate-name": cert.GetName()}},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": ca.certPEM},
		}
		if err := c.Create(ctx, secret); err != nil {
			return 0, fmt.Errorf("writing Secret %s of certificate %s: %w", secretName, cert.GetName(), err)
		}
	}
	return len(list.Items), nil
}

// caOf returns the CA that cainjector would inject for the annotation value
// <namespace>/<certificate>: the ca.crt of that Certificate's Secret.
func caOf(ctx context.Context, c client.Client, ref string) ([]byte, error) {
	namespace, name, ok := strings.Cut(ref, "/")
	if !ok {
		return nil, fmt.Errorf("%s %q is not <namespace>/<name>", injectCAAnnotation, ref)
	}
	cert := &unstructured.Unstructured{}
	cert.SetGroupVersionKind(certificateGVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cert); err != nil {
		return nil, fmt.Errorf("%s names certificate %s: %w", injectCAAnnotation, ref, err)
	}
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: secretName}, secret); err != nil {
		return nil, err
	}
	return secret.Data["ca.crt"], nil
}

// serviceURL maps a webhook's Service reference to the loopback address
// standing in for that Service.
type serviceURL func(ref *admissionregistrationv1.ServiceReference) (string, error)

// wireWebhooks injects the CA into every webhook configuration that asks
// for it, as cainjector does, and replaces each Service reference by the
// URL of the loopback stand-in for that Service: kube-apiserver here has no
// route to a Service's cluster IP, and tests send traffic to loopback only.
// It returns how many webhooks it wired.
func wireWebhooks(ctx context.Context, c client.Client, toURL serviceURL) (int, error) {
	wired := 0
	fix := func(obj client.Object, configs []*admissionregistrationv1.WebhookClientConfig) error {
		ref := obj.GetAnnotations()[injectCAAnnotation]
		if ref == "" {
			return fmt.Errorf("%s has no %s annotation: nothing would give the API server its CA", obj.GetName(), injectCAAnnotation)
		}
		ca, err := caOf(ctx, c, ref)
		if err != nil {
			return err
		}
		for _, cfg := range configs {
			if cfg.Service == nil {
				return fmt.Errorf("%s has a webhook without a Service reference", obj.GetName())
			}
			url, err := toURL(cfg.Service)
			if err != nil {
				return err
			}
			cfg.Service, cfg.URL, cfg.CABundle = nil, &url, ca
			wired++
		}
		return c.Update(ctx, obj)
	}
	mutating := &admissionregistrationv1.MutatingWebhookConfigurationList{}
	if err := c.List(ctx, mutating); err != nil {
		return 0, err
	}
	for i := range mutating.Items {
		cfg := &mutating.Items[i]
		configs := make([]*admissionregistrationv1.WebhookClientConfig, 0, len(cfg.Webhooks))
		for j := range cfg.Webhooks {
			configs = append(configs, &cfg.Webhooks[j].ClientConfig)
		}
		if err := fix(cfg, configs); err != nil {
			return 0, err
		}
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfigurationList{}
	if err := c.List(ctx, validating); err != nil {
		return 0, err
	}
	for i := range validating.Items {
		cfg := &validating.Items[i]
		configs := make([]*admissionregistrationv1.WebhookClientConfig, 0, len(cfg.Webhooks))
		for j := range cfg.Webhooks {
			configs = append(configs, &cfg.Webhooks[j].ClientConfig)
		}
		if err := fix(cfg, configs); err != nil {
			return 0, err
		}
	}
	return wired, nil
}
