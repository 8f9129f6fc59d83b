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
