package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// TeamsIndex indexes ApiTokens by the Teams in spec.teams, so a Team change
// looks up only its own tokens instead of listing every token.
const TeamsIndex = "spec.teams"

// SetupIndexes registers the cache indexes the reconcilers rely on.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.ApiToken{}, TeamsIndex, func(obj client.Object) []string {
		return obj.(*v1alpha1.ApiToken).Spec.Teams
	})
}
