package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// The image's shape, as hack/image and the Dockerfile build it.
const (
	wantUser       = "65532:65532"
	wantUID        = 65532
	wantEntrypoint = "/manager"
	versionLabel   = "org.opencontainers.image.version"
)

// TestImage checks the image `make image` built: who it runs as, what it
// runs, that it holds no shell, and that its binary starts.
func TestImage(t *testing.T) {
	info, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := tarballPath()
	if err != nil {
		t.Fatal(err)
	}
	a, err := openArchive(tarball)
	if err != nil {
		t.Fatal(err)
	}
	files, err := a.files()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("runs as a numeric non-root user", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(info.User).To(Equal(wantUser))
		uid, gid, ok := strings.Cut(info.User, ":")
		g.Expect(ok).To(BeTrue(), "user %q has no group", info.User)
		for _, id := range []string{uid, gid} {
			n, err := strconv.Atoi(id)
			g.Expect(err).NotTo(HaveOccurred(), "user %q is not numeric: runAsNonRoot cannot check a name", info.User)
			g.Expect(n).To(BeNumerically(">", 0))
		}
	})

	t.Run("runs the operator binary", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(info.Entrypoint).To(Equal([]string{wantEntrypoint}))
		g.Expect(info.Cmd).To(BeEmpty())
		g.Expect(a.config.OS).To(Equal("linux"))
		g.Expect(info.Digest).To(MatchRegexp(`^sha256:[0-9a-f]{64}$`))
		g.Expect(info.Size).To(BeNumerically(">", 0))
	})

	t.Run("holds the binary alone, read-only and owned by the user", func(t *testing.T) {
		g := NewWithT(t)
		var names []string
		for _, f := range files {
			names = append(names, f.Name)
			// No shell in any layer: nothing to exec into, nothing a
			// compromised process could run scripts with.
			g.Expect(path.Base(f.Name)).NotTo(BeElementOf("sh", "bash", "ash", "dash", "zsh", "busybox"), "%s is a shell", f.Name)
		}
		g.Expect(names).NotTo(ContainElement("bin/sh"))
		g.Expect(names).To(Equal([]string{layerPath(wantEntrypoint)}))
		bin := files[0]
		g.Expect(bin.Typeflag).To(Equal(byte(tar.TypeReg)))
		g.Expect(bin.Mode & 0o7777).To(Equal(int64(0o555)))
		g.Expect(bin.UID).To(Equal(wantUID))
		g.Expect(bin.GID).To(Equal(wantUID))
	})

	t.Run("binary is static, for the image's architecture", func(t *testing.T) {
		g := NewWithT(t)
		f, err := elf.Open(info.Binary)
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = f.Close() }()
		// The image has no libc and no dynamic loader.
		for _, p := range f.Progs {
			g.Expect(p.Type).NotTo(Equal(elf.PT_INTERP), "the binary is dynamically linked")
		}
		if machine, ok := elfMachines[a.config.Architecture]; ok {
			g.Expect(f.Machine).To(Equal(machine))
		}
	})

	t.Run("tag is the version", func(t *testing.T) {
		g := NewWithT(t)
		version := a.config.Config.Labels[versionLabel]
		g.Expect(version).NotTo(BeEmpty())
		g.Expect(tagOf(info.Reference)).To(Equal(version), "reference %s", info.Reference)
		g.Expect(version).NotTo(Equal("latest"))
	})

	t.Run("dist/image.json describes it", func(t *testing.T) {
		meta, err := readMetadata()
		if err != nil {
			t.Skipf("no dist/image.json: %v", err)
		}
		described, err := tarballPath()
		if err != nil {
			t.Fatal(err)
		}
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(meta.Path) {
			meta.Path = filepath.Join(root, meta.Path)
		}
		if meta.Path != described {
			t.Skipf("dist/image.json describes %s, not %s", meta.Path, described)
		}
		g := NewWithT(t)
		g.Expect(meta.Reference).To(Equal(info.Reference))
		g.Expect(meta.Digest).To(Equal(info.Digest))
		g.Expect(meta.Size).To(Equal(info.Size))
	})

	t.Run("binary answers --help", func(t *testing.T) {
		if a.config.OS != runtime.GOOS || a.config.Architecture != runtime.GOARCH {
			t.Skipf("the image is for %s/%s, this machine %s/%s", a.config.OS, a.config.Architecture, runtime.GOOS, runtime.GOARCH)
		}
		g := NewWithT(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// main.go parses flag.CommandLine, which exits 0 after printing the
		// usage to stderr when asked for help, and 2 on a bad flag.
		out, err := exec.CommandContext(ctx, info.Binary, "--help").CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), "%s --help: %s", info.Binary, out)
		for _, flag := range []string{"-leader-elect", "-metrics-bind-address", "-health-probe-bind-address", "-enable-webhooks", "-verify-bind-address"} {
			g.Expect(string(out)).To(ContainSubstring(flag))
		}
	})
}

// elfMachines maps GOARCH to the ELF machine its binaries declare.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"riscv64": elf.EM_RISCV,
}

// tagOf is the tag of a reference: after the last colon that follows the
// last slash (a registry's port has a slash after it).
func tagOf(ref string) string {
	name := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.LastIndex(name, ":"); i >= 0 {
		return name[i+1:]
	}
	return ""
}

// TestLoadFixture reads archives made here, so the reader's own rules are
// checked without `make image`: it finds the entrypoint, and refuses an
// archive whose blobs do not match their digests.
func TestLoadFixture(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, blobs map[string][]byte, layer string)
		wantErr string
	}{
		{name: "intact"},
		{
			name: "layer changed",
			tamper: func(t *testing.T, blobs map[string][]byte, layer string) {
				blobs[layer] = gzipped(t, tarOf(t, "manager", []byte("other")))
			},
			wantErr: "digest",
		},
		{
			name:    "layer missing",
			tamper:  func(_ *testing.T, blobs map[string][]byte, layer string) { delete(blobs, layer) },
			wantErr: "missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			dir := t.TempDir()
			tarball := writeFixture(t, dir, tt.tamper)
			t.Setenv(EnvPath, tarball)
			info, err := Load(filepath.Join(dir, "out"))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(And(ContainSubstring(tt.wantErr), ContainSubstring("make image"))))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(info.Reference).To(Equal("example.com:5000/tokenwarden:v1"))
			g.Expect(tagOf(info.Reference)).To(Equal("v1"))
			g.Expect(info.User).To(Equal(wantUser))
			g.Expect(info.Entrypoint).To(Equal([]string{wantEntrypoint}))
			g.Expect(os.ReadFile(info.Binary)).To(Equal([]byte("#!binary")))
		})
	}
}

// TestLoadMissing checks that a missing image points to `make image`.
func TestLoadMissing(t *testing.T) {
	t.Setenv(EnvPath, filepath.Join(t.TempDir(), "absent.tar"))
	_, err := Load(t.TempDir())
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("run `make image`")))
}

// writeFixture writes a one-layer image archive holding /manager into dir,
// letting tamper change the blobs first, and returns its path.
func writeFixture(t *testing.T, dir string, tamper func(t *testing.T, blobs map[string][]byte, layer string)) string {
	t.Helper()
	blobs := map[string][]byte{}
	add := func(b []byte) descriptor {
		sum := sha256.Sum256(b)
		d := descriptor{Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
		blobs["blobs/sha256/"+hex.EncodeToString(sum[:])] = b
		return d
	}
	layer := add(gzipped(t, tarOf(t, "manager", []byte("#!binary"))))
	layer.MediaType = "application/vnd.oci.image.layer.v1.tar+gzip"
	cfg := add(mustJSON(t, map[string]any{
		"os": "linux", "architecture": "amd64",
		"config": map[string]any{"User": wantUser, "Entrypoint": []string{wantEntrypoint}},
	}))
	cfg.MediaType = "application/vnd.oci.image.config.v1+json"
	m := add(mustJSON(t, manifest{MediaType: "application/vnd.oci.image.manifest.v1+json", Config: cfg, Layers: []descriptor{layer}}))
	m.MediaType = "application/vnd.oci.image.manifest.v1+json"
	m.Annotations = map[string]string{annotationRefName: "example.com:5000/tokenwarden:v1"}
	if tamper != nil {
		p, _ := blobPath(layer.Digest)
		tamper(t, blobs, p)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	write("index.json", mustJSON(t, index{Manifests: []descriptor{m}}))
	for name, b := range blobs {
		write(name, b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func tarOf(t *testing.T, name string, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o555, Uid: wantUID, Gid: wantUID, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
