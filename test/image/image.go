// Package image reads the operator image that `make image` writes (an OCI
// image layout in a tar, see hack/image), for tests: what the image runs,
// as whom, and its entrypoint binary extracted to disk, so a test can run
// exactly what a cluster would.
//
// It reads the archive with the standard library (index.json, then the
// manifest, the config and the layers) rather than go-containerregistry,
// which builds it: that library would bring its dependencies into the
// operator's go.mod for a few dozen lines of JSON and tar, and a reader
// written apart from the writer checks the archive as other tools will
// read it, digests included.
package image

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Info describes a built image.
type Info struct {
	// Reference is the image's name and tag, e.g. tokenwarden:v0.1.0.
	Reference string
	// Digest is the manifest's digest, e.g. sha256:....
	Digest string
	// Size counts the manifest, the config and the compressed layers, in
	// bytes: what a pull downloads.
	Size int64
	// User is the config's user, e.g. 65532:65532.
	User string
	// Entrypoint and Cmd are the config's.
	Entrypoint, Cmd []string
	// Binary is the path of the extracted entrypoint binary on disk.
	Binary string
}

// EnvPath names the environment variable with the path of the image tarball;
// `make test` sets it. A relative path is taken from the repository root,
// where make runs, not from the test's package directory.
const EnvPath = "TOKENWARDEN_IMAGE"

// metadataPath is where `make image` describes the last image built,
// relative to the repository root.
const metadataPath = "dist/image.json"

// modulePath identifies the repository root by its go.mod.
const modulePath = "github.com/tokenwarden/tokenwarden"

// smallBlob bounds the blobs read into memory: index, manifests, configs.
// Layers are larger and streamed.
const smallBlob = 4 << 20

// Load reads the OCI tarball (path from $TOKENWARDEN_IMAGE, else
// dist/image.json's path relative to the repository root), extracts the
// entrypoint binary into dir, and returns its description. Errors say to run
// `make image`.
func Load(dir string) (Info, error) {
	tarball, err := tarballPath()
	if err != nil {
		return Info{}, err
	}
	a, err := openArchive(tarball)
	if err != nil {
		return Info{}, fmt.Errorf("reading the image %s: %w; run `make image` to build it", tarball, err)
	}
	info := a.info()
	if len(info.Entrypoint) == 0 {
		return Info{}, fmt.Errorf("the image %s has no entrypoint; run `make image` to build it again", tarball)
	}
	info.Binary, err = a.extract(info.Entrypoint[0], dir)
	if err != nil {
		return Info{}, fmt.Errorf("extracting %s from the image %s: %w; run `make image` to build it again", info.Entrypoint[0], tarball, err)
	}
	return info, nil
}

// metadata is dist/image.json, as hack/image writes it.
type metadata struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Path      string `json:"path"`
}

// tarballPath finds the image tarball: $TOKENWARDEN_IMAGE, else the one
// dist/image.json names.
func tarballPath() (string, error) {
	root, rootErr := repoRoot()
	resolve := func(p string) (string, error) {
		if filepath.IsAbs(p) {
			return p, nil
		}
		if rootErr != nil {
			return "", rootErr
		}
		return filepath.Join(root, p), nil
	}
	if p := os.Getenv(EnvPath); p != "" {
		return resolve(p)
	}
	meta, err := readMetadata()
	if err != nil {
		return "", err
	}
	return resolve(meta.Path)
}

// readMetadata reads dist/image.json.
func readMetadata() (metadata, error) {
	root, err := repoRoot()
	if err != nil {
		return metadata{}, err
	}
	b, err := os.ReadFile(filepath.Join(root, metadataPath))
	if err != nil {
		return metadata{}, fmt.Errorf("no image: $%s is unset and %w; run `make image` to build one", EnvPath, err)
	}
	var m metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return metadata{}, fmt.Errorf("reading %s: %w; run `make image` to write it again", metadataPath, err)
	}
	if m.Path == "" {
		return metadata{}, fmt.Errorf("%s names no image tarball; run `make image` to write it again", metadataPath)
	}
	return m, nil
}

// repoRoot is the nearest directory up from the working directory whose
// go.mod is this module's: go test runs each package in its own directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && declaresModule(b, modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s checkout above the working directory; set $%s to the image tarball `make image` builds", modulePath, EnvPath)
		}
		dir = parent
	}
}

func declaresModule(gomod []byte, module string) bool {
	for line := range strings.SplitSeq(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == module
		}
	}
	return false
}

// descriptor, index, manifest and config hold the parts of the OCI (and
// Docker) JSON documents read here.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type index struct {
	Manifests []descriptor `json:"manifests"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
}

type config struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

// archive is an image tarball with its small documents read and checked.
type archive struct {
	path      string
	reference string
	manifest  descriptor
	image     manifest
	config    config
}

// layerFile is one entry of a layer.
type layerFile struct {
	Name     string
	Typeflag byte
	Mode     int64
	UID, GID int
}

// The annotations naming the image in index.json.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerdRef = "io.containerd.image.name"
)

// openArchive reads index.json, the manifest and the config, checking the
// digest of each blob read.
func openArchive(p string) (*archive, error) {
	small := map[string][]byte{}
	err := walkTar(p, func(hdr *tar.Header, r io.Reader) (bool, error) {
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || hdr.Size > smallBlob || (name != "index.json" && !strings.HasPrefix(name, "blobs/")) {
			return false, nil
		}
		b, err := io.ReadAll(r)
		small[name] = b
		return false, err
	})
	if err != nil {
		return nil, err
	}
	idxJSON, ok := small["index.json"]
	if !ok {
		return nil, errors.New("no index.json: not an OCI image layout")
	}
	var idx index
	if err := json.Unmarshal(idxJSON, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	if len(idx.Manifests) != 1 {
		return nil, fmt.Errorf("index.json lists %d images, want 1", len(idx.Manifests))
	}
	a := &archive{path: p, manifest: idx.Manifests[0]}
	a.reference = a.manifest.Annotations[annotationRefName]
	if a.reference == "" {
		a.reference = a.manifest.Annotations[annotationContainerdRef]
	}
	mb, err := blob(small, a.manifest)
	if err != nil {
		return nil, fmt.Errorf("the manifest: %w", err)
	}
	if err := json.Unmarshal(mb, &a.image); err != nil {
		return nil, fmt.Errorf("the manifest: %w", err)
	}
	cb, err := blob(small, a.image.Config)
	if err != nil {
		return nil, fmt.Errorf("the config: %w", err)
	}
	if err := json.Unmarshal(cb, &a.config); err != nil {
		return nil, fmt.Errorf("the config: %w", err)
	}
	return a, nil
}

// blob returns the blob d describes, checking its size and digest.
func blob(small map[string][]byte, d descriptor) ([]byte, error) {
	p, err := blobPath(d.Digest)
	if err != nil {
		return nil, err
	}
	b, ok := small[p]
	if !ok {
		return nil, fmt.Errorf("blob %s is missing", d.Digest)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s has %d bytes, its descriptor says %d", d.Digest, len(b), d.Size)
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.Digest {
		return nil, fmt.Errorf("blob %s has digest %s", d.Digest, got)
	}
	return b, nil
}

func blobPath(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexPart) != 64 {
		return "", fmt.Errorf("digest %q is not sha256", digest)
	}
	return "blobs/sha256/" + hexPart, nil
}

func (a *archive) info() Info {
	size := a.manifest.Size + a.image.Config.Size
	for _, l := range a.image.Layers {
		size += l.Size
	}
	return Info{
		Reference:  a.reference,
		Digest:     a.manifest.Digest,
		Size:       size,
		User:       a.config.Config.User,
		Entrypoint: a.config.Config.Entrypoint,
		Cmd:        a.config.Config.Cmd,
	}
}

// walkLayers calls fn for every entry of every layer, bottom layer first,
// and checks each layer's digest once read.
func (a *archive) walkLayers(fn func(hdr *tar.Header, r io.Reader) error) error {
	for _, l := range a.image.Layers {
		p, err := blobPath(l.Digest)
		if err != nil {
			return err
		}
		found := false
		err = walkTar(a.path, func(hdr *tar.Header, r io.Reader) (bool, error) {
			if path.Clean(hdr.Name) != p {
				return false, nil
			}
			found = true
			return true, readLayer(l, r, fn)
		})
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if !found {
			return fmt.Errorf("layer %s is missing", l.Digest)
		}
	}
	return nil
}

// readLayer reads one layer blob, gzip-compressed or not as its media type
// says, and checks its digest.
func readLayer(l descriptor, r io.Reader, fn func(hdr *tar.Header, r io.Reader) error) error {
	digest := sha256.New()
	counted := io.TeeReader(r, digest)
	content := counted
	switch {
	case strings.HasSuffix(l.MediaType, "gzip"):
		zr, err := gzip.NewReader(counted)
		if err != nil {
			return err
		}
		defer func() { _ = zr.Close() }()
		content = zr
	case strings.HasSuffix(l.MediaType, ".tar"):
	default:
		return fmt.Errorf("layer media type %q is not supported", l.MediaType)
	}
	tr := tar.NewReader(content)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := fn(hdr, tr); err != nil {
			return err
		}
	}
	// The digest covers the whole blob, padding included.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(digest.Sum(nil)); got != l.Digest {
		return fmt.Errorf("the layer's digest is %s", got)
	}
	return nil
}

// files lists every entry of every layer.
func (a *archive) files() ([]layerFile, error) {
	var files []layerFile
	err := a.walkLayers(func(hdr *tar.Header, _ io.Reader) error {
		files = append(files, layerFile{
			Name:     layerPath(hdr.Name),
			Typeflag: hdr.Typeflag,
			Mode:     hdr.Mode,
			UID:      hdr.Uid,
			GID:      hdr.Gid,
		})
		return nil
	})
	return files, err
}

// extract writes the file at path p in the image (the upper layer's, if
// several hold it) into dir, executable by its owner, and returns where.
func (a *archive) extract(p, dir string) (string, error) {
	want := layerPath(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	out := filepath.Join(dir, path.Base(want))
	found := false
	err := a.walkLayers(func(hdr *tar.Header, r io.Reader) error {
		if layerPath(hdr.Name) != want || hdr.Typeflag != tar.TypeReg {
			return nil
		}
		found = true
		return writeExecutable(out, r, hdr.Size)
	})
	if err != nil {
		// Written before its layer's digest was checked: leave no binary
		// from a damaged image behind.
		_ = os.Remove(out)
		return "", err
	}
	if !found {
		return "", fmt.Errorf("no regular file %s in the layers", p)
	}
	return out, nil
}

// writeExecutable writes size bytes of r to path, readable and executable
// by its owner only.
func writeExecutable(path string, r io.Reader, size int64) error {
	// A binary extracted before into the same directory is read-only.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o500) //nolint:gosec // An executable, for its owner only: tests run it.
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// layerPath is a layer entry's path without the leading "./" or "/" that
// some writers add.
func layerPath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// walkTar calls fn for each entry of the tar at p until fn says it is done.
func walkTar(p string, fn func(hdr *tar.Header, r io.Reader) (done bool, err error)) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		done, err := fn(hdr, tr)
		if err != nil || done {
			return err
		}
	}
}
