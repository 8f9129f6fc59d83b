package crd_test

import (
	"io/fs"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/tokenwarden/tokenwarden/config/crd"
)

// TestEveryFieldIsDocumented: `kubectl explain` shows these descriptions,
// so every field a user can set or read has one, and it starts with the
// field's JSON name, as the house style asks.
func TestEveryFieldIsDocumented(t *testing.T) {
	files, err := fs.Glob(crd.Bases, "bases/*.yaml")
	if err != nil || len(files) != 2 {
		t.Fatalf("want the two CRDs, got %v (%v)", files, err)
	}
	fields := 0
	for _, file := range files {
		data, err := crd.Bases.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		def := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, def); err != nil {
			t.Fatal(err)
		}
		for _, version := range def.Spec.Versions {
			root := version.Schema.OpenAPIV3Schema
			for _, top := range []string{"spec", "status"} {
				prop, ok := root.Properties[top]
				if !ok {
					t.Errorf("%s: no %s", def.Name, top)
					continue
				}
				fields += checkDocumented(t, def.Spec.Names.Kind+"."+top, top, &prop)
			}
		}
	}
	t.Logf("%d documented fields", fields)
	if fields < 40 {
		t.Errorf("only %d fields found: the walk is broken", fields)
	}
}

func checkDocumented(t *testing.T, path, name string, s *apiextensionsv1.JSONSchemaProps) int {
	t.Helper()
	n := 1
	if s.Description == "" {
		t.Errorf("%s has no description", path)
	} else if !strings.HasPrefix(s.Description, name+" ") && !strings.HasPrefix(s.Description, name+"\n") && !strings.HasPrefix(s.Description, name+",") {
		t.Errorf("%s: description does not start with %q: %.60q", path, name, s.Description)
	}
	for child, prop := range s.Properties {
		n += checkDocumented(t, path+"."+child, child, &prop)
	}
	if s.Items != nil && s.Items.Schema != nil {
		for child, prop := range s.Items.Schema.Properties {
			n += checkDocumented(t, path+"[]."+child, child, &prop)
		}
	}
	return n
}
