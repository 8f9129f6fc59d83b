package chart

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Write replaces the chart in dir with files. A chart written before is
// removed first, so that an object gone from the build leaves no template
// behind; a directory that holds anything but a chart is left alone.
func Write(dir string, files map[string][]byte) error {
	if err := removeChart(dir); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(path, files[name], 0o600); err != nil {
			return err
		}
	}
	return nil
}

func removeChart(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err == nil {
		return os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty and holds no Chart.yaml; not overwriting it", dir)
	}
	return nil
}
