// Command image builds Tokenwarden's operator image from a binary built
// beforehand, without a container engine, for `make image`. The image holds
// one layer with the binary and nothing else: no shell, no package manager,
// no files to patch. It runs as 65532:65532, like the Dockerfile's.
//
// The output is one tar that is at once an OCI image layout (oci-layout,
// index.json, blobs/sha256/...) and a `docker save` archive (manifest.json
// naming the same blobs), as `docker save` itself writes since Docker 25: so
// `crane push`, `podman load`, `docker load`, `skopeo copy oci-archive:` and
// containerd all read it. Beside it a small JSON file records the reference,
// digest, size and path for tests and scripts.
//
// Every input is fixed (file times from --source-date-epoch, owners, modes,
// gzip level, the order of the archive's entries), so the same binary and
// flags give the same bytes, hence the same digest.
//
// It is its own module, so go-containerregistry does not enter the
// operator's go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's shape. The Dockerfile writes the same: keep them in step.
const (
	// entrypoint is where the binary lives in the image.
	entrypoint = "/manager"
	// uid and gid are the numeric non-root user the operator runs as
	// (distroless's "nonroot"); numeric, so runAsNonRoot can check it
	// without an /etc/passwd in the image.
	uid  = 65532
	gid  = 65532
	user = "65532:65532"
	// binaryMode: readable and executable by anyone, writable by no one.
	binaryMode = 0o555
	// defaultPath is the PATH BuildKit gives an image built FROM scratch;
	// set here too so both builds describe the same config.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Annotations on the image in index.json. ref.name is the OCI one (skopeo,
// podman); io.containerd.image.name is what containerd, and Docker on its
// containerd image store, name a loaded image by.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerdRef = "io.containerd.image.name"
)

type options struct {
	binary   string
	ref      string
	output   string
	metadata string
	version  string
	revision string
	source   string
	arch     string
	epoch    int64
}

// metadata is what --metadata writes (dist/image.json); test/image reads it.
type metadata struct {
	// Reference is the image's name and tag, e.g. tokenwarden:v0.1.0.
	Reference string `json:"reference"`
	// Digest is the manifest's digest, the one a registry shows after
	// `crane push` or `skopeo copy`, which push the manifest unchanged.
	Digest string `json:"digest"`
	// Size counts the bytes a pull downloads: manifest, config and
	// compressed layers.
	Size int64 `json:"size"`
	// Path is the tarball, as given to --output (make gives it relative to
	// the repository root).
	Path string `json:"path"`
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "The operator binary, built for linux and --arch.")
	flag.StringVar(&o.ref, "image", "", "The image reference with its tag, e.g. registry.example.com/tokenwarden:v0.1.0.")
	flag.StringVar(&o.output, "output", "", "Where to write the image tarball.")
	flag.StringVar(&o.metadata, "metadata", "", "Where to write the JSON description of the image (reference, digest, size, path); empty writes none.")
	flag.StringVar(&o.version, "version", "", "The org.opencontainers.image.version label.")
	flag.StringVar(&o.revision, "revision", "", "The org.opencontainers.image.revision label: the commit built.")
	flag.StringVar(&o.source, "source", "", "The org.opencontainers.image.source label: the repository's URL.")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "The architecture the binary was built for (GOARCH).")
	flag.Int64Var(&o.epoch, "source-date-epoch", 0, "Seconds since the epoch for every timestamp in the image, e.g. the commit's time.")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.binary == "" || o.ref == "" || o.output == "" || o.version == "" {
		return errors.New("--binary, --image, --output and --version are required")
	}
	// A tag, not a digest, and written out: the tarball names the image by
	// it, and an implied "latest" would name no build in particular.
	tag, err := name.NewTag(o.ref)
	if err != nil {
		return fmt.Errorf("--image: %w", err)
	}
	if !strings.HasSuffix(o.ref, ":"+tag.TagStr()) {
		return fmt.Errorf("--image %q has no tag; give one, e.g. tokenwarden:v0.1.0", o.ref)
	}
	created := time.Unix(o.epoch, 0).UTC()

	img, err := build(o, created)
	if err != nil {
		return err
	}
	if err := writeArchive(img, tag, o, created); err != nil {
		return err
	}
	meta, err := describe(img, o)
	if err != nil {
		return err
	}
	// `crane push <file>` reads the archive through manifest.json and
	// rebuilds the manifest from it; it must come out byte for byte the same,
	// or the registry would show another digest than the one recorded.
	loaded, err := tarball.ImageFromPath(o.output, nil)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", o.output, err)
	}
	got, err := loaded.Digest()
	if err != nil {
		return fmt.Errorf("reading back %s: %w", o.output, err)
	}
	if got.String() != meta.Digest {
		return fmt.Errorf("reading back %s as a docker archive gives digest %s, want %s", o.output, got, meta.Digest)
	}
	if o.metadata != "" {
		b, err := json.MarshalIndent(meta, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(o.metadata, append(b, '\n')); err != nil {
			return err
		}
	}
	fmt.Printf("image: %s %s (%d bytes) in %s\n", meta.Reference, meta.Digest, meta.Size, meta.Path)
	return nil
}

// build makes the image: one layer holding the binary at entrypoint, and
// its config. Docker's media types (go-containerregistry's default) rather
// than OCI's, because `crane push` of a tarball always pushes a Docker
// manifest: with the same types, the pushed manifest is the one built here.
func build(o options, created time.Time) (v1.Image, error) {
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w (run go build first)", err)
	}
	layerTar, err := binaryLayer(bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.BestCompression), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("making the layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "COPY manager " + entrypoint + " # make image",
		},
	})
	if err != nil {
		return nil, err
	}
	base, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := base.DeepCopy()
	cfg.Created = v1.Time{Time: created}
	cfg.OS = "linux"
	cfg.Architecture = o.arch
	cfg.Config = v1.Config{
		User:       user,
		Entrypoint: []string{entrypoint},
		Env:        []string{defaultPath},
		Labels: map[string]string{
			"org.opencontainers.image.version":  o.version,
			"org.opencontainers.image.revision": o.revision,
			"org.opencontainers.image.source":   o.source,
		},
	}
	return mutate.ConfigFile(img, cfg)
}

// binaryLayer is the uncompressed layer: the binary alone, owned by the
// operator's user, with a fixed time.
func binaryLayer(bin []byte, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     entrypoint[1:],
		Mode:     binaryMode,
		Uid:      uid,
		Gid:      gid,
		Size:     int64(len(bin)),
		ModTime:  created,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive writes the image as an OCI image layout with
// go-containerregistry's layout package, adds the docker archive's
// manifest.json beside it, and tars the directory with fixed metadata.
func writeArchive(img v1.Image, tag name.Tag, o options, created time.Time) error {
	dir := filepath.Dir(o.output)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".image-layout-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img,
		layout.WithAnnotations(map[string]string{
			annotationRefName:       o.ref,
			annotationContainerdRef: containerdName(tag),
		}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: o.arch}),
	); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}

	m, err := img.Manifest()
	if err != nil {
		return err
	}
	docker := tarball.Manifest{{
		Config:   blobPath(m.Config.Digest),
		RepoTags: []string{o.ref},
	}}
	for _, l := range m.Layers {
		docker[0].Layers = append(docker[0].Layers, blobPath(l.Digest))
	}
	b, err := json.Marshal(docker)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "manifest.json"), b, 0o600); err != nil {
		return err
	}

	part := o.output + ".tmp"
	if err := tarDir(tmp, part, created); err != nil {
		_ = os.Remove(part)
		return err
	}
	return os.Rename(part, o.output)
}

// tarDir archives root's contents into out in name order, every entry
// owned by root:root with fixed modes and time, so nothing of the machine
// that built it (user, umask, clock) reaches the archive.
func tarDir(root, out string, created time.Time) error {
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)

	f, err := os.Create(out) //nolint:gosec // The path is the caller's --output.
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, n := range names {
		if err := addEntry(tw, filepath.Join(root, filepath.FromSlash(n)), n, created); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func addEntry(tw *tar.Writer, path, name string, created time.Time) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, ModTime: created}
	switch {
	case fi.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
	case fi.Mode().IsRegular():
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
	default:
		return fmt.Errorf("%s: not a regular file or directory", path)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(path) //nolint:gosec // A file of the layout written just now.
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(tw, f)
	return err
}

// describe computes what --metadata records.
func describe(img v1.Image, o options) (metadata, error) {
	digest, err := img.Digest()
	if err != nil {
		return metadata{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return metadata{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return metadata{}, err
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return metadata{Reference: o.ref, Digest: digest.String(), Size: size, Path: o.output}, nil
}

// containerdName is the fully qualified form containerd stores names in:
// tokenwarden:v1 is docker.io/library/tokenwarden:v1.
func containerdName(tag name.Tag) string {
	registry := tag.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return registry + "/" + tag.RepositoryStr() + ":" + tag.TagStr()
}

func blobPath(h v1.Hash) string {
	return "blobs/" + h.Algorithm + "/" + h.Hex
}

// writeFileAtomic replaces path whole, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil { //nolint:gosec // Not a secret: for anyone to read.
		return err
	}
	return os.Rename(tmp, path)
}
