package main

import (
	"slices"
	"testing"
)

func TestRefusals(t *testing.T) {
	lower := []float64{0, 40, 0, 70}
	upper := []float64{90, 200, 30, 300}
	got, agree := refusals(50, lower, upper)
	// The third token was refused before the instant and the fourth was
	// still answered 200 after it: for them only the upper bound is known.
	if want := []float64{50, 50, 30, 300}; !slices.Equal(got, want) || agree != 2 {
		t.Errorf("refusals = %v, %d agree; want %v, 2", got, agree, want)
	}
}

// TestPutRevocation: the keys the reports read (doc.go, scale_doc.go).
func TestPutRevocation(t *testing.T) {
	res := results{}
	if agree := putRevocation(res, "revocation_", 50, []float64{0, 40}, []float64{90, 200}); agree != 2 {
		t.Errorf("agree = %d, want 2", agree)
	}
	for key, want := range map[string]any{
		"revocation_ms_p99": 50.0, "revocation_ms_max_upper_bound": 200.0, "revocation_ms_p50_lower_bound": 0.0,
		"revocation_verifier_ms": 50.0, "revocation_verifier_agree": 2,
	} {
		if res[key] != want {
			t.Errorf("%s = %v, want %v", key, res[key], want)
		}
	}
}
