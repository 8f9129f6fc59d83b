package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// minScannedValues is the fewest values the leak scan accepts: the samples
// alone issue three, the specs several more; fewer means the collection
// broke and a scan for nothing would pass.
const minScannedValues = 5

// issued holds every token value the suite has seen, for the leak scan at
// its end. Values are never printed: only where they came from and their
// first characters.
var issued = &valueSet{origins: map[string]string{}}

// valueSet is a set of token values, each with where it was first seen.
type valueSet struct {
	mu      sync.Mutex
	origins map[string]string
}

// add records value, seen at origin; "" is no value.
func (s *valueSet) add(value, origin string) {
	if value == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.origins[value]; !ok {
		s.origins[value] = origin
	}
}

// snapshot copies the set, so that a scan works on a fixed list.
func (s *valueSet) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.origins))
	for v, o := range s.origins {
		out[v] = o
	}
	return out
}

// displayPrefix is as much of a value as a failure message may show: the
// type prefix and a few characters, as status.tokenPrefix does.
func displayPrefix(value string) string {
	if len(value) > 8 {
		return value[:8] + "…"
	}
	return "(short value)"
}

// needle is one form a value may take where it leaked.
type needle struct {
	form string
	text []byte
}

// needles are the forms of value searched for: its random part (which a
// log stripping the type prefix would still leak), and its base64 in both
// alphabets at each of the three alignments it can have inside a longer
// encoded blob, such as a whole Secret body. Only the characters that
// depend on the value alone are kept, so each alignment matches whatever
// surrounds the value.
func needles(value string) []needle {
	random := value
	if i := strings.IndexByte(value, '_'); i >= 0 && i+1 < len(value) {
		random = value[i+1:]
	}
	out := []needle{{form: "plain", text: []byte(random)}}
	for _, enc := range []struct {
		name string
		enc  *base64.Encoding
	}{{"base64", base64.RawStdEncoding}, {"base64url", base64.RawURLEncoding}} {
		for shift := range 3 {
			encoded := enc.enc.EncodeToString(append(make([]byte, shift), value...))
			// Character i covers bits [6i, 6i+6); the value covers bits
			// [8*shift, 8*(shift+len)).
			start, end := (8*shift+5)/6, 8*(shift+len(value))/6
			out = append(out, needle{form: fmt.Sprintf("%s at offset %d", enc.name, shift), text: []byte(encoded[start:end])})
		}
	}
	return out
}

// scanSource is one place searched: a log file or a cluster object.
type scanSource struct {
	where string
	data  []byte
}

// logSources reads every log the suite's processes wrote: the operator's
// output of every run, the control plane's log of every run, and nginx's.
func logSources(stateDir string) []scanSource {
	GinkgoHelper()
	var sources []scanSource
	for _, pattern := range []string{
		filepath.Join(stateDir, "operator-*.log"),
		filepath.Join(stateDir, "controlplane*.log"),
		filepath.Join(logsDir, "*.log"),
	} {
		paths, err := filepath.Glob(pattern)
		Expect(err).NotTo(HaveOccurred())
		for _, path := range paths {
			data, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			sources = append(sources, scanSource{where: "log " + filepath.Base(path), data: data})
		}
	}
	return sources
}

// clusterObjects lists every object of every kind that can be listed, and
// returns each as JSON. The Secrets Tokenwarden manages are returned without
// their data.token, the one place their value belongs; that value is
// recorded in issued, so the scan also covers values no spec read.
func clusterObjects(d *devProcess) []scanSource {
	GinkgoHelper()
	// Discovery and the list are eventually consistent on a control plane
	// that has just started: a group may still be missing, or a resource
	// not yet served. The scan needs one complete answer.
	var list struct {
		Items []map[string]any `json:"items"`
	}
	Eventually(func(g Gomega) {
		out, errOut, err := d.kubectl("", "api-resources", "--verbs=list", "-o", "name")
		g.Expect(err).NotTo(HaveOccurred(), errOut)
		kinds := strings.Fields(out)
		g.Expect(kinds).To(ContainElements("events", "secrets", "apitokens.auth.tokenwarden.io"))
		out, errOut, err = d.kubectl("", "get", strings.Join(kinds, ","), "--all-namespaces", "-o", "json")
		g.Expect(err).NotTo(HaveOccurred(), errOut)
		g.Expect(json.Unmarshal([]byte(out), &list)).To(Succeed())
	}, time.Minute, time.Second).Should(Succeed())

	sources := make([]scanSource, 0, len(list.Items))
	for _, item := range list.Items {
		kind, _ := item["kind"].(string)
		meta, _ := item["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		if ns, _ := meta["namespace"].(string); ns != "" {
			name = ns + "/" + name
		}
		where := kind + " " + name
		if kind == "Secret" && managedByTokenwarden(meta) {
			data, _ := item["data"].(map[string]any)
			encoded, _ := data["token"].(string)
			value, err := base64.StdEncoding.DecodeString(encoded)
			Expect(err).NotTo(HaveOccurred(), where)
			issued.add(string(value), where)
			delete(data, "token")
		}
		data, err := json.Marshal(item)
		Expect(err).NotTo(HaveOccurred())
		sources = append(sources, scanSource{where: where, data: data})
	}
	return sources
}

func managedByTokenwarden(meta map[string]any) bool {
	labels, _ := meta["labels"].(map[string]any)
	return labels[v1alpha1.ManagedByLabel] == v1alpha1.ManagedByValue
}

// leaks searches every source for every needle of every value and returns
// one line per value and source where one was found. The lines name the
// value by origin and display prefix only, so a failure does not itself
// leak it.
func leaks(values map[string]string, sources []scanSource) []string {
	var found []string
	for value, origin := range values {
		forms := needles(value)
		for _, src := range sources {
			for _, n := range forms {
				if bytes.Contains(src.data, n.text) {
					found = append(found, fmt.Sprintf("value of %s (%s) found %s in %s", origin, displayPrefix(value), n.form, src.where))
					break
				}
			}
		}
	}
	sort.Strings(found)
	return found
}

// wheres names the sources.
func wheres(sources []scanSource) []string {
	out := make([]string, len(sources))
	for i, src := range sources {
		out[i] = src.where
	}
	return out
}

// zapLevel matches the level of a JSON log line at V(2) and above, which
// zap writes as Level(-V).
var zapLevel = regexp.MustCompile(`"level":"Level\(-(\d+)\)"`)

// scanSummary is the figures of a scan, for the report.
func scanSummary(values map[string]string, logs, objects []scanSource) string {
	var b strings.Builder
	logBytes, objectBytes := 0, 0
	kinds := map[string]int{}
	highest := 0
	for _, src := range logs {
		logBytes += len(src.data)
		for _, m := range zapLevel.FindAllSubmatch(src.data, -1) {
			if v, err := strconv.Atoi(string(m[1])); err == nil && v > highest {
				highest = v
			}
		}
	}
	for _, src := range objects {
		objectBytes += len(src.data)
		kinds[strings.SplitN(src.where, " ", 2)[0]]++
	}
	fmt.Fprintf(&b, "%d values, each plain and in 6 base64 forms; %d bytes in %d logs, %d bytes in %d objects of %d kinds (%d Events)\n",
		len(values), logBytes, len(logs), objectBytes, len(objects), len(kinds), kinds["Event"])
	fmt.Fprintf(&b, "  highest V level in the operator's logs: %d\n", highest)
	for _, src := range logs {
		fmt.Fprintf(&b, "  %s: %d bytes\n", src.where, len(src.data))
	}
	origins := make([]string, 0, len(values))
	for value, origin := range values {
		origins = append(origins, fmt.Sprintf("%s (%s)", origin, displayPrefix(value)))
	}
	slices.Sort(origins)
	fmt.Fprintf(&b, "  values: %s\n", strings.Join(origins, ", "))
	return b.String()
}

// appendFile is a log file that every write opens and appends to, so a
// run's log needs no closing however the run ends, SIGKILL included.
type appendFile string

func (f appendFile) Write(p []byte) (int, error) {
	file, err := os.OpenFile(string(f), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := file.Write(p)
	return n, errors.Join(err, file.Close())
}
