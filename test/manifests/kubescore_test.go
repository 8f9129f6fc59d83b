package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// kube-score's grades, from its scorecard package.
const (
	gradeCritical = 1
	gradeWarning  = 5
)

// kubeScoreException is a CRITICAL finding the install keeps on purpose.
type kubeScoreException struct {
	// check is kube-score's check ID, object "Kind namespace/name", summary
	// the finding's own summary: an exception covers that one finding,
	// not everything else the check might find on the object.
	check, object, summary string
}

// kubeScoreExceptions are the CRITICAL findings the install keeps, each
// justified in docs/operations.md, section kube-score. An exception that
// no longer matches fails the test too, so the list and the page shrink
// with the findings.
var kubeScoreExceptions = []kubeScoreException{
	// A CPU limit throttles the verification path, on which kube-apiserver
	// authenticates every request bearing a Tokenwarden token.
	{"container-resources", "Deployment tokenwarden-system/tokenwarden-controller-manager", "CPU limit is not set"},
	// Release tags are immutable; Always would keep a replica from
	// restarting while the registry is unreachable and break images loaded
	// into kind or minikube.
	{"container-image-pull-policy", "Deployment tokenwarden-system/tokenwarden-controller-manager", "ImagePullPolicy is not set to Always"},
}

// pinnedTag replaces a latest (or missing) image tag before scoring: the
// install's tag is set when it is built (`make build-installer IMG=...`),
// so the score is that of a release, whatever config/manager holds between
// releases.
const pinnedTag = "v0.0.0-kube-score"

// kubeScoreObject and kubeScoreCheck are the parts of kube-score's JSON
// output (format version 2) the test reads.
type kubeScoreObject struct {
	TypeMeta struct {
		Kind string `json:"kind"`
	} `json:"type_meta"`
	ObjectMeta struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"object_meta"`
	Checks []kubeScoreCheck `json:"checks"`
}

type kubeScoreCheck struct {
	Check struct {
		ID string `json:"id"`
	} `json:"check"`
	Grade    int  `json:"grade"`
	Skipped  bool `json:"skipped"`
	Comments []struct {
		Path        string `json:"path"`
		Summary     string `json:"summary"`
		Description string `json:"description"`
	} `json:"comments"`
}

// TestKubeScore scores what config/default renders with kube-score (make
// test passes the pinned one in $KUBE_SCORE) and fails on every CRITICAL
// finding that kubeScoreExceptions does not keep. Warnings are logged.
func TestKubeScore(t *testing.T) {
	kubeScore := os.Getenv("KUBE_SCORE")
	if kubeScore == "" {
		kubeScore = filepath.Join(repoRoot, "bin", "kube-score")
	}
	if _, err := os.Stat(kubeScore); err != nil {
		t.Fatalf("%s is missing: run `make kube-score` to install it (%v)", kubeScore, err)
	}
	docs := kustomizeBuild(t, "config/default")
	var rendered bytes.Buffer
	for _, obj := range docs {
		pinImageTags(t, obj)
		rendered.Write(marshal(t, obj))
	}
	file := filepath.Join(t.TempDir(), "install.yaml")
	if err := os.WriteFile(file, rendered.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(t.Context(), kubeScore, "score", "--output-format", "json", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// Exit code 1 says there is a CRITICAL finding; the output tells which.
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
		t.Fatalf("kube-score score: %v\n%s", err, stderr.String())
	}
	var objects []kubeScoreObject
	if err := json.Unmarshal(out, &objects); err != nil {
		t.Fatalf("decoding kube-score's output: %v\n%s", err, out)
	}
	if len(objects) == 0 {
		t.Fatal("kube-score scored no object")
	}

	used := make([]bool, len(kubeScoreExceptions))
	var summary []string
	passed, critical, warnings := 0, 0, 0
	for _, obj := range objects {
		object := fmt.Sprintf("%s %s/%s", obj.TypeMeta.Kind, obj.ObjectMeta.Namespace, obj.ObjectMeta.Name)
		for _, check := range obj.Checks {
			switch {
			case check.Skipped:
				continue
			case check.Grade > gradeWarning:
				passed++
				continue
			case check.Grade > gradeCritical:
				warnings++
			default:
				critical++
			}
			for _, c := range check.Comments {
				grade := "WARNING"
				if check.Grade <= gradeCritical {
					grade = "CRITICAL"
					if i := exceptionFor(check.Check.ID, object, c.Summary); i >= 0 {
						used[i] = true
						grade = "CRITICAL, kept (docs/operations.md)"
					} else {
						t.Errorf("kube-score: %s on %s (%s): %s. %s", check.Check.ID, object, c.Path, c.Summary, c.Description)
					}
				}
				summary = append(summary, fmt.Sprintf("  [%s] %s: %s: (%s) %s", grade, check.Check.ID, object, c.Path, c.Summary))
			}
		}
	}
	t.Logf("kube-score on config/default: %d objects scored; checks: %d passed, %d CRITICAL, %d WARNING\n%s",
		len(objects), passed, critical, warnings, strings.Join(summary, "\n"))
	for i, e := range kubeScoreExceptions {
		if !used[i] {
			t.Errorf("kube-score no longer finds %q (%s) on %s: remove its exception here and its justification in docs/operations.md", e.summary, e.check, e.object)
		}
	}
}

func exceptionFor(check, object, summary string) int {
	for i, e := range kubeScoreExceptions {
		if e.check == check && e.object == object && e.summary == summary {
			return i
		}
	}
	return -1
}

// pinImageTags gives every container of a Deployment whose image has no
// tag, or latest, the tag pinnedTag.
func pinImageTags(t *testing.T, obj *unstructured.Unstructured) {
	t.Helper()
	if obj.GetKind() != "Deployment" {
		return
	}
	containers, _, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	if err != nil {
		t.Fatalf("%s %s: %v", obj.GetKind(), name(obj), err)
	}
	for _, c := range containers {
		container := c.(map[string]any)
		image, _ := container["image"].(string)
		if strings.Contains(image, "@") {
			continue
		}
		repo, tag := image, ""
		if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
			repo, tag = image[:i], image[i+1:]
		}
		if tag == "" || tag == "latest" {
			container["image"] = repo + ":" + pinnedTag
			t.Logf("scoring %s's container %s with image %s: config/default has %s, and a release sets the tag", name(obj), container["name"], container["image"], image)
		}
	}
	if err := unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
}
