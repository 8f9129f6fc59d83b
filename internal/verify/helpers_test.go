package verify

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// t0 is the instant every test starts at.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func teamsFunc(teams ...*v1alpha1.Team) TeamSource {
	return StaticTeams(teams...)
}

// failingTeams is a TeamSource whose informer never synced.
var failingTeams TeamSource = NewTeamTable(clock.RealClock{})
