package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControllerManagerUser is the user kube-controller-manager authenticates
// as: the API server's bootstrap RBAC grants it the role that lets it make
// a ServiceAccount and a token for each of its controllers.
const ControllerManagerUser = "system:kube-controller-manager"

// ControllerManagerControllers are the controllers kube-controller-manager
// runs here: those that act on objects without a node or a kubelet, so
// namespaces are deleted, dependents are garbage collected, ServiceAccounts
// and their CA ConfigMap appear, Services get EndpointSlices and the
// aggregated ClusterRoles (edit, admin, view) take in the rules of roles
// labelled for them, as in a real cluster. Workload controllers are left
// out: with no node nothing would run their pods.
var ControllerManagerControllers = []string{
	"namespace-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"clusterrole-aggregation-controller",
}

// Names of kube-controller-manager's files in the API server's cert dir,
// beside the service-account key it signs tokens with.
const (
	controllerManagerKubeconfig = "kube-controller-manager.kubeconfig"
	apiServerCAFile             = "apiserver-ca.crt"
	// saKeyFile is where envtest writes the key kube-apiserver signs
	// service-account tokens with (--service-account-signing-key-file).
	saKeyFile = "sa-signer.key"
)

// watchGraceFlag is the kube-apiserver flag New sets for
// kube-controller-manager: see there.
const watchGraceFlag = "shutdown-watch-termination-grace-period"

// controllerManagerTimeouts bound its start (until it has published the
// API server's CA) and its stop (SIGTERM until SIGKILL). The start waits
// for the API server's bootstrap RBAC and a token per controller, which
// take a few seconds on a loaded machine.
const (
	controllerManagerStartTimeout = 90 * time.Second
	controllerManagerStopTimeout  = 20 * time.Second
)

// StartControllerManager starts kube-controller-manager against env's
// running API server and returns once it works: its root CA publisher has
// put this run's API server CA into the kube-root-ca.crt ConfigMap of the
// default namespace, with a ServiceAccount token it asked for itself. It
// acts as a ServiceAccount per controller (--use-service-account-credentials),
// as kubeadm's does, so admission sees the users a real cluster's
// controllers have. env.Stop stops it too, and a watchdog kills it should
// this process end without stopping it. Start calls it when
// Options.ControllerManager is set; callers of New (given that option too,
// which prepares kube-apiserver for it) and StartGuarded call it after
// StartGuarded.
func StartControllerManager(env *envtest.Environment, output io.Writer) error {
	apiServer := env.ControlPlane.APIServer
	if apiServer == nil || apiServer.Authn == nil || env.Config == nil {
		return errors.New("starting kube-controller-manager: the API server is not running")
	}
	if len(apiServer.Configure().Get(watchGraceFlag).Get(nil)) == 0 {
		return errors.New("starting kube-controller-manager: the control plane was made without Options.ControllerManager, so kube-apiserver would not stop while it runs")
	}
	if err := requireBinaries(env.BinaryAssetsDirectory, "kube-controller-manager"); err != nil {
		return err
	}
	user, err := env.AddUser(envtest.User{Name: ControllerManagerUser}, nil)
	if err != nil {
		return fmt.Errorf("provisioning kube-controller-manager's user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	certDir := apiServer.CertDir
	files := map[string][]byte{
		filepath.Join(certDir, controllerManagerKubeconfig): kubeconfig,
		filepath.Join(certDir, apiServerCAFile):             env.Config.CAData,
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
	}
	cmd := exec.Command(filepath.Join(env.BinaryAssetsDirectory, "kube-controller-manager"), controllerManagerArgs(certDir)...)
	// Without output it writes to /dev/null, not to a pipe: a pipe would
	// kill it with SIGPIPE once this process is gone, hiding whether the
	// watchdog works.
	if output != nil {
		cmd.Stdout, cmd.Stderr = output, output
	}
	// Its own process group, as envtest starts etcd and kube-apiserver: a
	// Ctrl-C to the terminal reaches the operator, which stops it in turn.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	proc := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		proc.waitErr = cmd.Wait()
		close(proc.exited)
	}()
	if id, ok := processID(cmd.Process.Pid); ok {
		if err := guardProcesses(os.Getpid(), []string{id}); err != nil {
			return errors.Join(fmt.Errorf("guarding kube-controller-manager: %w", err), proc.stop())
		}
	}
	// envtest's Stop stops the API server and then its authenticator: the
	// one hook it has for more processes. kube-controller-manager then
	// stops a moment after the API server, which it only ever retries.
	apiServer.Authn = &stopAlso{Authn: apiServer.Authn, stop: proc.stop}

	if err := waitForControllerManager(env, proc); err != nil {
		return errors.Join(err, proc.stop())
	}
	return nil
}

// controllerManagerArgs are kube-controller-manager's flags, with its files
// in certDir: only loopback, no serving port, no leader election.
func controllerManagerArgs(certDir string) []string {
	return []string{
		"--kubeconfig=" + filepath.Join(certDir, controllerManagerKubeconfig),
		"--use-service-account-credentials=true",
		"--controllers=" + strings.Join(ControllerManagerControllers, ","),
		// The key kube-apiserver signs service-account tokens with, and
		// its CA for the tokens' ca.crt and the kube-root-ca.crt ConfigMaps.
		"--service-account-private-key-file=" + filepath.Join(certDir, saKeyFile),
		"--root-ca-file=" + filepath.Join(certDir, apiServerCAFile),
		"--leader-elect=false",
		// No HTTPS at all (no health or metrics endpoint): nothing here
		// scrapes it, and a port is one more thing to collide.
		"--secure-port=0",
		"--bind-address=127.0.0.1",
	}
}

// waitForControllerManager waits until kube-root-ca.crt in the default
// namespace holds this run's API server CA, which the root CA publisher
// writes once kube-controller-manager is up and its controllers'
// ServiceAccount tokens work. A ConfigMap left by an earlier run with the
// same etcd holds the earlier CA, so it does not count.
func waitForControllerManager(env *envtest.Environment, proc *process) error {
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), controllerManagerStartTimeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var last error
	for {
		cm := &corev1.ConfigMap{}
		last = c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "kube-root-ca.crt"}, cm)
		if last == nil {
			if bytes.Equal([]byte(cm.Data["ca.crt"]), env.Config.CAData) {
				return nil
			}
			last = errors.New("kube-root-ca.crt holds another CA")
		}
		select {
		case <-proc.exited:
			if proc.waitErr == nil {
				return errors.New("kube-controller-manager exited while starting")
			}
			return fmt.Errorf("kube-controller-manager exited while starting: %w", proc.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager did not publish the API server's CA within %v: %w", controllerManagerStartTimeout, last)
		case <-ticker.C:
		}
	}
}

// process is a started kube-controller-manager.
type process struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// stop sends SIGTERM and waits for the process to exit, with SIGKILL after
// controllerManagerStopTimeout; it may be called more than once.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(controllerManagerStopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.stopErr = fmt.Errorf("kube-controller-manager did not stop within %v of SIGTERM: killed", controllerManagerStopTimeout)
		}
	})
	return p.stopErr
}

// stopAlso is an API server authenticator that stops another process as it
// stops.
type stopAlso struct {
	envtest.Authn
	stop func() error
}

// Stop stops the other process, then the authenticator.
func (s *stopAlso) Stop() error {
	return errors.Join(s.stop(), s.Authn.Stop())
}
