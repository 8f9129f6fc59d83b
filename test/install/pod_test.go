package install

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// replica runs the Deployment's manager container as a process on this
// machine, the way a kubelet would start it, with exactly the container's
// arguments and environment except where a process outside a pod cannot do
// otherwise. Those deviations, each applied by a rule below and nowhere
// else:
//   - the binary is the image's entrypoint, extracted from the image;
//   - every address the arguments bind (":8081") is moved to a free
//     loopback port, and the webhook server, whose port is the binary's
//     default, is given one, since replicas share this machine's ports;
//   - each Secret volume is written into a directory, and arguments naming
//     its mount path name that directory instead;
//   - KUBECONFIG names a kubeconfig holding a TokenRequest token of the
//     pod's ServiceAccount, where a pod gets that token and the API server's
//     address from its projected volume and KUBERNETES_SERVICE_HOST.
type replica struct {
	name string
	// ports maps each port the container binds, by number, to the loopback
	// address it binds instead.
	ports map[int32]string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer
	log  *os.File
}

// bindAddress matches an argument's value that only says which port to
// bind on every interface.
var bindAddress = regexp.MustCompile(`^(0\.0\.0\.0)?:(\d+)$`)

// webhookPortName is the container port of the admission webhooks, which
// the arguments do not name because it is the binary's default.
const webhookPortName = "webhook-server"

func startReplica(ctx context.Context, c client.Client, deploy *appsv1.Deployment, binary, kubeconfig, dir string, index int) (*replica, error) {
	spec := deploy.Spec.Template.Spec
	var container *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == "manager" {
			container = &spec.Containers[i]
		}
	}
	if container == nil {
		return nil, fmt.Errorf("deployment %s has no container named manager", deploy.Name)
	}
	if len(container.Command) > 0 {
		return nil, fmt.Errorf("container manager sets command %v: the rehearsal runs the image's entrypoint", container.Command)
	}
	r := &replica{name: fmt.Sprintf("%s-%d", deploy.Name, index), ports: map[int32]string{}, done: make(chan struct{})}
	podDir := filepath.Join(dir, r.name)
	if err := os.MkdirAll(podDir, 0o700); err != nil {
		return nil, err
	}

	// Volumes: each Secret's keys become files, as the kubelet writes them.
	mounts := map[string]string{}
	for _, mount := range container.VolumeMounts {
		var volume *corev1.Volume
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == mount.Name {
				volume = &spec.Volumes[i]
			}
		}
		if volume == nil || volume.Secret == nil {
			return nil, fmt.Errorf("volume mount %s is not of a Secret volume: the rehearsal cannot provide it", mount.Name)
		}
		secret := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: deploy.Namespace, Name: volume.Secret.SecretName}, secret); err != nil {
			return nil, fmt.Errorf("volume %s: %w", mount.Name, err)
		}
		path := filepath.Join(podDir, "volumes", mount.Name)
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, err
		}
		for key, value := range secret.Data {
			if err := os.WriteFile(filepath.Join(path, key), value, 0o400); err != nil {
				return nil, err
			}
		}
		mounts[mount.MountPath] = path
	}

	args := make([]string, 0, len(container.Args)+1)
	for _, arg := range container.Args {
		name, value, hasValue := strings.Cut(arg, "=")
		if hasValue {
			if m := bindAddress.FindStringSubmatch(value); m != nil {
				port, _ := strconv.ParseInt(m[2], 10, 32)
				addr, err := freeLoopback()
				if err != nil {
					return nil, err
				}
				r.ports[int32(port)] = addr
				value = addr
			}
			for mountPath, path := range mounts {
				if value == mountPath || strings.HasPrefix(value, mountPath+"/") {
					value = path + strings.TrimPrefix(value, mountPath)
				}
			}
			arg = name + "=" + value
		}
		args = append(args, arg)
	}
	for _, port := range container.Ports {
		if _, ok := r.ports[port.ContainerPort]; ok {
			continue
		}
		if port.Name != webhookPortName {
			return nil, fmt.Errorf("container port %s (%d) is bound by no argument: the rehearsal does not know how to move it", port.Name, port.ContainerPort)
		}
		addr, err := freeLoopback()
		if err != nil {
			return nil, err
		}
		_, portText, _ := net.SplitHostPort(addr)
		args = append(args, "--webhook-port="+portText)
		r.ports[port.ContainerPort] = addr
	}

	env := []string{"KUBECONFIG=" + kubeconfig, "HOME=" + podDir}
	for _, e := range container.Env {
		value := e.Value
		if e.ValueFrom != nil {
			switch {
			case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
				value = deploy.Namespace
			case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
				value = r.name
			default:
				return nil, fmt.Errorf("environment variable %s comes from a source the rehearsal does not provide", e.Name)
			}
		}
		env = append(env, e.Name+"="+value)
	}

	log, err := os.Create(filepath.Join(dir, r.name+".log"))
	if err != nil {
		return nil, err
	}
	r.log = log
	r.cmd = exec.Command(binary, args...)
	r.cmd.Env = env
	r.cmd.Dir = podDir
	r.cmd.Stdout, r.cmd.Stderr = r, r
	// Its own process group, so a kill reaches nothing else.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// Write keeps the process's output for the log checks, and in a file.
func (r *replica) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.log.Write(p)
	return r.out.Write(p)
}

// Output is everything the process wrote so far.
func (r *replica) Output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// Alive says whether the process still runs.
func (r *replica) Alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM, as the kubelet does, and SIGKILL after the grace
// period.
func (r *replica) Stop(grace time.Duration) {
	if !r.Alive() {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(grace):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
}

// Addr is where the replica serves the container port a Service's or
// probe's target names, by number or by name.
func (r *replica) Addr(deploy *appsv1.Deployment, target intstr.IntOrString) (string, error) {
	number := target.IntVal
	if target.Type == intstr.String {
		number = 0
		for _, container := range deploy.Spec.Template.Spec.Containers {
			for _, port := range container.Ports {
				if port.Name == target.StrVal {
					number = port.ContainerPort
				}
			}
		}
		if number == 0 {
			return "", fmt.Errorf("no container port is named %q", target.StrVal)
		}
	}
	addr, ok := r.ports[number]
	if !ok {
		return "", fmt.Errorf("the container binds nothing on port %d", number)
	}
	return addr, nil
}

// Ready asks the readiness probe, as the kubelet does.
func (r *replica) Ready(ctx context.Context, deploy *appsv1.Deployment) bool {
	probe := deploy.Spec.Template.Spec.Containers[0].ReadinessProbe
	if probe == nil || probe.HTTPGet == nil {
		return r.Alive()
	}
	addr, err := r.Addr(deploy, probe.HTTPGet.Port)
	if err != nil {
		return false
	}
	scheme := strings.ToLower(string(probe.HTTPGet.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+probe.HTTPGet.Path, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// freeLoopback returns a loopback address with a port free at this moment.
func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}
