// Command helmchart writes the Helm chart derived from the rendered
// kustomize build: `make helm-chart` runs it on dist/install.yaml, right
// after `make build-installer` wrote that, into dist/chart.
//
// The chart is a build output, like dist/install.yaml, not a committed
// copy: the manager's image tag changes with every commit, and a chart
// generated on demand from the one build cannot drift from it, where a
// committed one would need a check to catch it. test/helm proves, in
// `make test`, that the chart's default values render the build exactly.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokenwarden/tokenwarden/hack/helmchart/chart"
)

func main() {
	install := flag.String("install", "dist/install.yaml", "the rendered kustomize build to derive the chart from")
	out := flag.String("out", "dist/chart", "the chart directory to (re)write")
	version := flag.String("version", "", "the release, e.g. git describe output; empty means the manager image's tag")
	flag.Parse()
	if err := run(*install, *out, *version); err != nil {
		fmt.Fprintln(os.Stderr, "helmchart:", err)
		os.Exit(1)
	}
}

func run(install, out, version string) error {
	rendered, err := os.ReadFile(filepath.Clean(install))
	if err != nil {
		return err
	}
	files, err := chart.Generate(rendered, chart.Options{Version: version})
	if err != nil {
		return fmt.Errorf("%s: %w", install, err)
	}
	if err := chart.Write(out, files); err != nil {
		return err
	}
	fmt.Printf("helmchart: wrote %d files into %s\n", len(files), out)
	return nil
}
