// Package chart turns the rendered kustomize build (dist/install.yaml) into
// a Helm chart whose default values render that same build, object for
// object. The chart is derived, never written by hand, so the two installs
// cannot drift: every object comes from the build, and only the few fields
// people change per install are replaced by values, with the build's own
// values as the defaults.
//
// Templatized: the manager's image (repository, tag, digest), its
// Deployment's replicas and the manager container's resources. Toggles leave
// out whole groups of objects that not every cluster can or wants to take:
// the Prometheus Operator's kinds (group monitoring.coreos.com) and
// cert-manager's (group cert-manager.io), which need their CRDs, and the
// NetworkPolicies; one more adds helm.sh/resource-policy: keep to the CRDs,
// so that `helm uninstall` leaves them, and every ApiToken and Team, in
// place.
//
// Everything else, the namespace included, stays as kustomize rendered it:
// the namespace is spelled out in annotations, DNS names and a CEL policy,
// so the chart refuses any release namespace but that one instead of
// rewriting strings it cannot fully know.
package chart

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ManagerContainer is the container whose image and resources the chart
// templatizes.
const ManagerContainer = "manager"

// Options are the inputs besides the rendered build.
type Options struct {
	// Name is the chart's name; the default is "tokenwarden".
	Name string
	// Version is the release being packaged, typically `git describe`
	// output; empty means the manager image's tag. Chart.yaml's
	// appVersion is it as given, its version the nearest SemVer 2 string.
	Version string
}

// toggle is a value that leaves a group of objects out of the chart.
type toggle struct {
	value string   // path under .Values, e.g. "prometheus.enabled"
	dir   string   // subdirectory of templates/
	doc   []string // what the group is, for values.yaml: "<value> renders <doc>"
	match func(u *unstructured.Unstructured) bool
}

// toggles are matched in order; an object belongs to the first that matches.
var toggles = []toggle{
	{
		value: "prometheus.enabled",
		dir:   "prometheus",
		doc: []string{
			"the Prometheus Operator's objects",
			"(group monitoring.coreos.com). Turn it off on a cluster without the",
			"Prometheus Operator's CRDs; the metrics Service stays.",
		},
		match: func(u *unstructured.Unstructured) bool { return group(u) == "monitoring.coreos.com" },
	},
	{
		value: "certManager.enabled",
		dir:   "cert-manager",
		doc: []string{
			"cert-manager's objects (group",
			"cert-manager.io), which issue the serving certificates the Deployment",
			"mounts. Without them, provide those Secrets and set the webhook",
			"configurations' caBundle yourself.",
		},
		match: func(u *unstructured.Unstructured) bool { return group(u) == "cert-manager.io" },
	},
	{
		value: "networkPolicy.enabled",
		dir:   "network-policy",
		doc: []string{
			"the NetworkPolicies (group",
			"networking.k8s.io). Turn it off where the network plugin does not",
			"enforce them or another policy engine governs traffic.",
		},
		match: func(u *unstructured.Unstructured) bool {
			return group(u) == "networking.k8s.io" && u.GetKind() == "NetworkPolicy"
		},
	},
}

// Placeholders stand in for template actions while the objects are still
// data: they are set into the objects, survive YAML serialization as plain
// scalars, and are replaced by actions after every "{{" already in the
// build has been escaped.
const (
	phImage     = "tokenwarden-helmchart-placeholder-image"
	phReplicas  = "tokenwarden-helmchart-placeholder-replicas"
	phResources = "tokenwarden-helmchart-placeholder-resources"
	phKeep      = "tokenwarden-helmchart-placeholder-keep"
)

// Image is a container image reference split into the parts values.yaml
// sets separately.
type Image struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
}

// ParseImage splits ref into repository, tag and digest. A registry port
// (host:5000/repo) is part of the repository, not a tag.
func ParseImage(ref string) Image {
	var img Image
	if at := strings.LastIndex(ref, "@"); at >= 0 {
		ref, img.Digest = ref[:at], ref[at+1:]
	}
	if colon := strings.LastIndex(ref, ":"); colon > strings.LastIndex(ref, "/") {
		ref, img.Tag = ref[:colon], ref[colon+1:]
	}
	img.Repository = ref
	return img
}

// semver is SemVer 2's grammar, from semver.org; Helm rejects a chart
// version that does not match it.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// notIdentifier matches what a SemVer pre-release identifier cannot hold.
var notIdentifier = regexp.MustCompile(`[^0-9A-Za-z-]+`)

// ChartVersion maps a version as `git describe` or an image tag spells it
// to SemVer 2: v1.2.3 and v1.2.3-4-gabcdef-dirty keep their meaning
// without the v; anything else (a bare commit, "latest") becomes a
// pre-release of 0.0.0, which sorts below every real release.
func ChartVersion(version string) string {
	if v := strings.TrimPrefix(version, "v"); semver.MatchString(v) {
		return v
	}
	// One identifier with a letter in it, so a commit of digits with a
	// leading zero stays valid.
	return "0.0.0-dev-" + strings.Trim(notIdentifier.ReplaceAllString(version, "-"), "-")
}

// EscapeTemplates makes text that contains "{{" come out of Helm's
// template engine unchanged: each "{{" becomes an action printing it.
// A lone "}}" outside an action is already plain text.
func EscapeTemplates(text string) string {
	return strings.ReplaceAll(text, "{{", `{{ "{{" }}`)
}

// Generate returns the chart's files, keyed by their path inside the chart
// directory, for the multi-document YAML install.
func Generate(install []byte, opts Options) (map[string][]byte, error) {
	if opts.Name == "" {
		opts.Name = "tokenwarden"
	}
	for _, ph := range []string{phImage, phReplicas, phResources, phKeep} {
		if bytes.Contains(install, []byte(ph)) {
			return nil, fmt.Errorf("the install already contains the placeholder %q", ph)
		}
	}
	objs, err := Decode(install)
	if err != nil {
		return nil, err
	}
	mgr, err := managerDeployment(objs)
	if err != nil {
		return nil, err
	}
	defaults, err := templatize(mgr)
	if err != nil {
		return nil, err
	}
	version := opts.Version
	if version == "" {
		version = defaults.Image.Tag
	}

	files := map[string][]byte{}
	groups := map[string][]string{}
	for _, u := range objs {
		if u.GetKind() == "CustomResourceDefinition" {
			if err := keepPlaceholder(u); err != nil {
				return nil, fmt.Errorf("%s: %w", ref(u), err)
			}
		}
		body, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", ref(u), err)
		}
		text, err := actions(EscapeTemplates(string(body)), opts.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref(u), err)
		}
		dir, cond := "", ""
		if u.GetKind() == "CustomResourceDefinition" {
			dir = "crds"
		}
		for _, tg := range toggles {
			if tg.match(u) {
				dir, cond = tg.dir, tg.value
				groups[tg.value] = append(groups[tg.value], u.GetKind()+" "+u.GetName())
				break
			}
		}
		if cond != "" {
			text = "{{- if .Values." + cond + " }}\n" + text + "{{- end }}\n"
		}
		name := fileName(files, dir, u)
		files[name] = []byte(generatedTemplate + text)
	}

	files["templates/_helpers.tpl"] = []byte(helpers(opts.Name))
	files["templates/namespace-guard.yaml"] = []byte(namespaceGuard(mgr.GetNamespace(), opts.Name))
	files["templates/NOTES.txt"] = []byte(notes(mgr))
	values, err := valuesYAML(defaults, groups)
	if err != nil {
		return nil, err
	}
	files["values.yaml"] = values
	schema, err := valuesSchema()
	if err != nil {
		return nil, err
	}
	files["values.schema.json"] = schema
	files["Chart.yaml"] = chartYAML(opts.Name, ChartVersion(version), version)
	return files, nil
}

// Decode splits a multi-document YAML stream into objects, skipping empty
// documents.
func Decode(stream []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading document %d: %w", len(objs)+1, err)
		}
		body, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(objs)+1, err)
		}
		if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(body); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(objs)+1, err)
		}
		objs = append(objs, u)
	}
}

// managerDeployment is the one Deployment with a container named manager.
func managerDeployment(objs []*unstructured.Unstructured) (*unstructured.Unstructured, error) {
	var found []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == "Deployment" && containerIndex(u, ManagerContainer) >= 0 {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("want exactly one Deployment with a container named %s, found %d", ManagerContainer, len(found))
	}
	return found[0], nil
}

// defaults are the values that reproduce the build.
type defaults struct {
	Image        Image          `json:"image"`
	ReplicaCount int64          `json:"replicaCount"`
	Resources    map[string]any `json:"resources"`
}

// templatize reads the templatized fields of the manager Deployment and
// puts placeholders in their place. Each must be present: a chart that
// silently lost a knob is worse than a build that fails.
func templatize(deploy *unstructured.Unstructured) (defaults, error) {
	var d defaults
	replicas, ok, err := unstructured.NestedInt64(deploy.Object, "spec", "replicas")
	if err != nil {
		return d, fmt.Errorf("%s: %w", ref(deploy), err)
	}
	if !ok {
		return d, fmt.Errorf("%s: spec.replicas is not set", ref(deploy))
	}
	d.ReplicaCount = replicas
	if err := unstructured.SetNestedField(deploy.Object, phReplicas, "spec", "replicas"); err != nil {
		return d, err
	}

	containers, _, err := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return d, err
	}
	c, ok := containers[containerIndex(deploy, ManagerContainer)].(map[string]any)
	if !ok {
		return d, fmt.Errorf("%s: container %s is not an object", ref(deploy), ManagerContainer)
	}
	image, ok := c["image"].(string)
	if !ok || image == "" {
		return d, fmt.Errorf("%s: container %s has no image", ref(deploy), ManagerContainer)
	}
	d.Image = ParseImage(image)
	resources, ok := c["resources"].(map[string]any)
	if !ok {
		return d, fmt.Errorf("%s: container %s has no resources", ref(deploy), ManagerContainer)
	}
	d.Resources = resources
	c["image"], c["resources"] = phImage, phResources
	if err := unstructured.SetNestedSlice(deploy.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		return d, err
	}
	return d, nil
}

// keepPlaceholder marks where the CRD's helm.sh/resource-policy
// annotation goes: beside its other annotations, or as the whole
// annotations field when it has none (an empty field would render as null).
func keepPlaceholder(crd *unstructured.Unstructured) error {
	if len(crd.GetAnnotations()) > 0 {
		return unstructured.SetNestedField(crd.Object, phKeep, "metadata", "annotations", phKeep)
	}
	return unstructured.SetNestedField(crd.Object, phKeep, "metadata", "annotations")
}

// actions replaces the placeholders in an object's YAML with template
// actions. The block-valued ones take the indentation of their key.
func actions(text, name string) (string, error) {
	text = strings.ReplaceAll(text, "replicas: "+phReplicas+"\n", "replicas: {{ .Values.replicaCount }}\n")
	text = strings.ReplaceAll(text, "image: "+phImage+"\n", `image: {{ include "`+name+`.image" . | quote }}`+"\n")
	text = replaceKeyLine(text, "resources: "+phResources, func(col int) string {
		return fmt.Sprintf("resources:\n%s{{- toYaml .Values.resources | nindent %d }}", strings.Repeat(" ", col+2), col+2)
	})
	text = replaceKeyLine(text, phKeep+": "+phKeep, func(col int) string {
		return "{{- if .Values.crds.keep }}\n" + strings.Repeat(" ", col) + "helm.sh/resource-policy: keep\n{{- end }}"
	})
	text = replaceKeyLine(text, "annotations: "+phKeep, func(col int) string {
		indent := strings.Repeat(" ", col)
		return "{{- if .Values.crds.keep }}\n" + indent + "annotations:\n" + indent + "  helm.sh/resource-policy: keep\n{{- end }}"
	})
	if strings.Contains(text, "tokenwarden-helmchart-placeholder-") {
		return "", errors.New("a placeholder was left unreplaced; its YAML took an unexpected shape")
	}
	return text, nil
}

// replaceKeyLine replaces each line that is exactly key, after its
// indentation, with what block returns for that indentation. Anything
// else (a flow style, the key as a list item's first) is left for the
// caller's leftover-placeholder check to report.
func replaceKeyLine(text, key string, block func(col int) string) string {
	lines := strings.SplitAfter(text, "\n")
	for i, line := range lines {
		content := strings.TrimRight(line, "\n")
		body := strings.TrimLeft(content, " ")
		if body != key {
			continue
		}
		col := len(content) - len(body)
		out := block(col)
		if !strings.HasPrefix(out, "{{-") {
			out = strings.Repeat(" ", col) + out
		}
		lines[i] = out + line[len(content):]
	}
	return strings.Join(lines, "")
}

// generatedTemplate heads every template; template comments do not reach
// the rendered output.
const generatedTemplate = "{{- /* Generated by hack/helmchart from the kustomize build (make helm-chart): change config/, not this file. */}}\n"

// fileName places an object's template under templates/, in dir when set,
// named by kind and name; names are unique within the chart.
func fileName(files map[string][]byte, dir string, u *unstructured.Unstructured) string {
	base := strings.ToLower(u.GetKind() + "-" + u.GetName())
	base = strings.Trim(notIdentifier.ReplaceAllString(base, "-"), "-")
	if dir != "" {
		base = dir + "/" + base
	}
	name := "templates/" + base + ".yaml"
	for i := 2; files[name] != nil; i++ {
		name = fmt.Sprintf("templates/%s-%d.yaml", base, i)
	}
	return name
}

func containerIndex(u *unstructured.Unstructured, name string) int {
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	return slices.IndexFunc(containers, func(c any) bool {
		m, ok := c.(map[string]any)
		return ok && m["name"] == name
	})
}

func group(u *unstructured.Unstructured) string {
	return u.GroupVersionKind().Group
}

func ref(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetKind() + " " + u.GetName()
	}
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

// quoted is s as a YAML double-quoted scalar (a JSON string is one), so a
// tag like 1.10 stays a string.
func quoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
